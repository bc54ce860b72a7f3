package e2e

// Defect 8 of issue 13: a password or clients file damaged while camd was
// stopped is found at the next start and reported with its path. camd then
// either refuses to start, naming the recovery, or moves the file aside and
// starts as on first boot; it never answers 500 because of it.

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedFiles damages one file of a data directory in use (with a
// changed password, an owner token and a client) and restarts camd.
func TestDamagedFiles(t *testing.T) {
	const (
		pw    = "the owner password"
		newPw = "set again with passwd"
	)
	hashLen := 0 // of a real password.hash, found by the first case
	tests := []struct {
		file   string
		damage func(old []byte) []byte
		name   string
		// failClosed: camd refuses to start, naming the file and camd
		// passwd; else it moves the file aside and starts.
		failClosed bool
	}{
		{"password.hash", func([]byte) []byte { return nil }, "empty", true},
		{"password.hash", func(b []byte) []byte { return b[:len(b)/2] }, "cut in half", true},
		{"password.hash", func(b []byte) []byte { return b[:len(b)-20] }, "cut inside the key", true},
		{"password.hash", func([]byte) []byte { return []byte("hunter2\n") }, "not a hash", true},
		{"password.hash", func(b []byte) []byte { return []byte(strings.Replace(string(b), "argon2id", "argon2i", 1)) }, "another algorithm", true},
		{"password.changed", func([]byte) []byte { return nil }, "empty", false},
		{"password.changed", func(b []byte) []byte { return b[:len(b)/2] }, "cut in half", false},
		{"password.changed", func([]byte) []byte { return []byte(`{"at":"2026-01-02T03:04:05Z"}` + "\n") }, "no version", false},
		{"password.changed", func([]byte) []byte { return []byte{0xff, 0x00, 0x13} }, "binary", false},
		{"clients.json", func([]byte) []byte { return nil }, "empty", false},
		{"clients.json", func(b []byte) []byte { return b[:len(b)/2] }, "cut in half", false},
		{"clients.json", func([]byte) []byte { return []byte(`{"porch":"x"}`) }, "not a list", false},
		{"clients.json", func([]byte) []byte { return []byte(`[{"name":"../x","id":""}]`) }, "a client without a name", false},
	}
	for _, tc := range tests {
		t.Run(tc.file+" "+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)

			// A data directory in use: the password changed (so that
			// password.changed exists), an owner token and a client.
			p := start(t, dir)
			if r := p.admin(p.Password, "POST", "/admin/password", `{"password":"`+pw+`"}`); r.Status != http.StatusNoContent {
				t.Fatalf("change the password: %d %s", r.Status, r.Body)
			}
			ownerTok := p.login(pw)
			clientTok := p.addClient(pw, `{"name":"porch"}`)
			if code := p.stop(); code != 0 {
				t.Fatalf("stop: exit %d", code)
			}
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.file == "password.hash" {
				hashLen = len(old)
			}
			damaged := tc.damage(old)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}

			p, err = tryStart(t, dir)
			if tc.failClosed {
				if err == nil {
					r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+pw+`"}`)
					t.Fatalf("camd started with a damaged %s (%d bytes of %d); login answers %d %s", tc.file, len(damaged), hashLen, r.Status, r.Body)
				}
				out := p.stderr.String()
				if code := p.cmd.ProcessState.ExitCode(); code != 1 {
					t.Errorf("exit code %d, want 1", code)
				}
				if !strings.Contains(out, path) || !strings.Contains(out, "camd passwd") {
					t.Errorf("the refusal names not both %s and camd passwd:\n%s", path, out)
				}
				if got, _ := os.ReadFile(path); string(got) != string(damaged) {
					t.Errorf("the damaged file was changed: %q", got)
				}
				// The recovery it names works on the damaged file.
				if code, out := run(t, newPw+"\n", "passwd", "--data-dir", dir); code != 0 {
					t.Fatalf("camd passwd on the damaged file: %d %s", code, out)
				}
				p = start(t, dir)
				if p.Password != "" {
					t.Error("camd made a new initial password after camd passwd")
				}
				p.login(newPw)
				if r := p.do("GET", "/admin", "", basicAuth("owner", newPw)); r.Status != http.StatusOK {
					t.Errorf("Basic after recovery: %d %s", r.Status, r.Body)
				}
				if r := p.do("POST", "/api/ack", `{"count":1}`, bearer(clientTok)); r.Status != http.StatusOK {
					t.Errorf("client token after recovery: %d %s", r.Status, r.Body)
				}
				return
			}

			if err != nil {
				t.Fatalf("camd refused to start with a damaged %s: %v", tc.file, err)
			}
			logs := p.logs()
			if !strings.Contains(logs, `"path":"`+path+`"`) || !strings.Contains(logs, `"moved_to":"`+path+`.bad-`) {
				t.Errorf("no log line names %s and where it was moved:\n%s", path, logs)
			}
			moved, _ := filepath.Glob(path + ".bad-*")
			if len(moved) != 1 {
				t.Fatalf("moved aside: %v, want one %s.bad-*", moved, tc.file)
			} else if got, _ := os.ReadFile(moved[0]); string(got) != string(damaged) {
				t.Errorf("%s does not hold the damaged file intact", moved[0])
			}
			if p.Password != "" {
				t.Error("camd made a new initial password")
			}
			// The owner's password works, on login and Basic: no 500.
			tok := p.login(pw)
			if r := p.do("GET", "/admin", "", basicAuth("owner", pw)); r.Status != http.StatusOK {
				t.Errorf("Basic: %d %s", r.Status, r.Body)
			}
			if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status == http.StatusInternalServerError || r.Status == http.StatusUnauthorized {
				t.Errorf("a new owner token: %d %s", r.Status, r.Body)
			}
			if r := p.admin(pw, "GET", "/admin/clients", ""); r.Status != http.StatusOK {
				t.Errorf("list clients: %d %s", r.Status, r.Body)
			}
			ownerWant, clientWant := http.StatusOK, http.StatusOK
			switch tc.file {
			case "password.changed":
				ownerWant = http.StatusUnauthorized // a fresh version: fail safe
			case "clients.json":
				clientWant = http.StatusUnauthorized // no clients: revoked
			}
			if r := p.do("POST", "/api/ack", `{"count":2}`, bearer(ownerTok)); r.Status != ownerWant {
				t.Errorf("owner token from before: %d %s, want %d", r.Status, r.Body, ownerWant)
			}
			if r := p.do("POST", "/api/ack", `{"count":3}`, bearer(clientTok)); r.Status != clientWant {
				t.Errorf("client token from before: %d %s, want %d", r.Status, r.Body, clientWant)
			}
			// Recovery: a client added again works.
			if tc.file == "clients.json" {
				tok := p.addClient(pw, `{"name":"porch"}`)
				if r := p.do("POST", "/api/ack", `{"count":4}`, bearer(tok)); r.Status != http.StatusOK {
					t.Errorf("a client added again: %d %s", r.Status, r.Body)
				}
			}
			// A second start finds nothing wrong.
			p.stop()
			p = start(t, dir)
			if strings.Contains(p.logs(), "damaged") {
				t.Errorf("the second start still reports damage:\n%s", p.logs())
			}
		})
	}
}
