package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestPasswdTerminal runs camd passwd on a real pseudo-terminal: it prompts
// twice, the typed password is never echoed, and mismatches or short
// passwords change nothing.
func TestPasswdTerminal(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	initial := p.Password

	tests := []struct {
		name   string
		typed  []string // one line per prompt answered
		code   int
		output string
	}{
		{"mismatch", []string{"first password 1", "second password 2"}, 1, "the two passwords differ; nothing changed"},
		{"too short", []string{"tiny7ch"}, 1, "password too short"},
		{"good", []string{"typed on a tty", "typed on a tty"}, 0, "owner password updated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(camd(t), "passwd", "--data-dir", dir)
			tty, err := pty.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer tty.Close()
			out := &ttyOutput{}
			go out.copyFrom(tty)

			prompts := []string{"New owner password: ", "Repeat it: "}
			for i, line := range tc.typed {
				out.waitFor(t, prompts[i])
				// Let the program switch echo off before typing: a real
				// person answers a prompt after it appears.
				time.Sleep(50 * time.Millisecond)
				if _, err := tty.Write([]byte(line + "\r")); err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Wait(); err != nil {
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatal(err)
				}
			}
			text := out.waitFor(t, tc.output)
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, text)
			}
			for _, line := range tc.typed {
				if strings.Contains(text, line) {
					t.Errorf("the typed password was echoed:\n%s", text)
				}
			}
		})
	}
	if r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+initial+`"}`); r.Status != 401 {
		t.Errorf("initial password still works: %d", r.Status)
	}
	p.login("typed on a tty")
}

// ttyOutput collects what the program writes to its terminal.
type ttyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ttyOutput) copyFrom(f *os.File) {
	b := make([]byte, 1024)
	for {
		n, err := f.Read(b)
		o.mu.Lock()
		o.buf.Write(b[:n])
		o.mu.Unlock()
		if err != nil {
			return // EIO once the program exits
		}
	}
}

// waitFor waits until the output contains s and returns all of it.
func (o *ttyOutput) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		text := o.buf.String()
		o.mu.Unlock()
		if strings.Contains(text, s) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q; it showed:\n%s", s, text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
