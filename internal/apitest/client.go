package apitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// Client returns a copy of c (nil: a plain client) whose requests are
// checked with Default: every exchange the document does not describe is
// reported to t, naming the method, path and status. skip, when not nil,
// exempts requests from the check, such as test-only routes that are no part
// of the API. Connections are still pooled by c's transport.
func Client(t Reporter, c *http.Client, skip func(*http.Request) bool) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = &transport{base: base, t: t, skip: skip}
	return &out
}

type transport struct {
	base http.RoundTripper
	t    Reporter
	skip func(*http.Request) bool
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if tr.skip != nil && tr.skip(req) {
		return tr.base.RoundTrip(req)
	}
	v, err := Default()
	if err != nil {
		return nil, err
	}
	reqBody, req, err := requestBody(req)
	if err != nil {
		return nil, err
	}
	res, err := tr.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	// The whole answer is read here, to check it and hand the caller an
	// identical copy. An answer cut short (a server killed mid-answer)
	// goes to the caller unchecked, with its read error.
	resBody, readErr := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = &replay{Reader: bytes.NewReader(resBody), err: readErr}
	if readErr != nil {
		return res, nil
	}
	if err := v.Check(req, reqBody, res, resBody); err != nil {
		tr.t.Errorf("OpenAPI: %s %s -> %d: %v", req.Method, req.URL.Path, res.StatusCode, err)
	}
	return res, nil
}

// requestBody returns a copy of req's body, and the request to send: req
// itself, whose body GetBody can make again, or a clone that reads the copy.
func requestBody(req *http.Request) ([]byte, *http.Request, error) {
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return nil, req, nil
	case req.GetBody != nil:
		rc, err := req.GetBody()
		if err != nil {
			return nil, nil, fmt.Errorf("copy request body: %w", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, nil, fmt.Errorf("copy request body: %w", err)
		}
		return b, req, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("read request body: %w", err)
	}
	clone := req.Clone(req.Context())
	clone.Body = io.NopCloser(bytes.NewReader(b))
	return b, clone, nil
}

// replay is a read answer body: its bytes, then the error reading them
// ended with, if any.
type replay struct {
	*bytes.Reader
	err error
}

func (r *replay) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err == io.EOF && r.err != nil {
		err = r.err
	}
	return n, err
}

func (*replay) Close() error { return nil }
