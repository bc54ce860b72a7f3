package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// The few camd calls the bench makes outside the load generator, as the
// README's curl examples make them.

var apiClient = newClient(4)

// call sends one JSON request and decodes a 200 answer into out (if not nil).
func call(ctx context.Context, method, url, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return statusError{fmt.Sprintf("%s %s", method, url), res.StatusCode, string(bytes.TrimSpace(raw))}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// statusError is an answer other than 200.
type statusError struct {
	call   string
	status int
	body   string
}

func (e statusError) Error() string {
	return fmt.Sprintf("%s: status %d: %s", e.call, e.status, e.body)
}

// busy reports whether err is camd's 503 for too many password checks at
// once, which a client answers by trying again shortly.
func busy(err error) bool {
	var se statusError
	return errors.As(err, &se) && se.status == http.StatusServiceUnavailable
}

// login trades the owner password for a token.
func login(ctx context.Context, s *server, pass string) (string, error) {
	var ans struct{ Token string }
	if err := call(ctx, http.MethodPost, s.url("/api/login"), "", map[string]string{"user": "owner", "pass": pass}, &ans); err != nil {
		return "", err
	}
	if ans.Token == "" {
		return "", fmt.Errorf("login answered no token")
	}
	return ans.Token, nil
}

// ack posts one ack, so that GET /api/ack has something to answer.
func ack(ctx context.Context, s *server, token string, count int) error {
	return call(ctx, http.MethodPost, s.url("/api/ack"), token, map[string]int{"count": count}, nil)
}

// timeLogins times n sequential logins and returns their durations in ms.
func timeLogins(ctx context.Context, s *server, pass string, n int) ([]float64, error) {
	var ms []float64
	for range n {
		t0 := time.Now()
		if _, err := login(ctx, s, pass); err != nil {
			return nil, err
		}
		ms = append(ms, float64(time.Since(t0))/float64(time.Millisecond))
	}
	return ms, nil
}

// camdHelp returns `camd --help`, which lists every flag and variable this
// build of camd knows: the bench asks it rather than assume that switches
// the other engineer is adding exist yet.
func camdHelp(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	return string(out)
}

// helpLines returns the lines of help that mention word, trimmed.
func helpLines(help, word string) []string {
	var out []string
	for line := range strings.Lines(help) {
		if strings.Contains(line, word) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
