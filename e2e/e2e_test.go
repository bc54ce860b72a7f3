package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const invalidToken = `Bearer realm="camd", error="invalid_token"`

// refusedAs reports whether r refuses a presented token with code: a 401
// whose challenge is error="invalid_token" whatever the reason (RFC 6750),
// with the reason in error_description and in the body's code.
func refusedAs(t *testing.T, r response, code string) bool {
	t.Helper()
	return r.Status == http.StatusUnauthorized &&
		strings.HasPrefix(r.Header.Get("WWW-Authenticate"), invalidToken+", error_description=") &&
		r.field(t, "code") == code
}

// TestSeedFlow: first start prints the password; log in, ack, admin; stop
// gracefully with a clean exit code; nothing secret in the logs.
func TestSeedFlow(t *testing.T) {
	p := start(t, t.TempDir())
	if len(p.Password) < 16 {
		t.Fatalf("initial password %q: want at least 16 characters", p.Password)
	}
	tok := p.login(p.Password)
	r := p.do("POST", "/api/ack", `{"count":7}`, bearer(tok))
	if r.Status != http.StatusOK || r.field(t, "count") != float64(7) || r.field(t, "user") != "owner" {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	if r := p.do("GET", "/admin", "", basicAuth("owner", p.Password)); r.Status != 200 || r.Body != "hi owner" {
		t.Errorf("admin: %d %q", r.Status, r.Body)
	}
	if r := p.do("GET", "/admin", ""); r.Header.Get("WWW-Authenticate") != `Basic realm="Backyard cam admin"` {
		t.Errorf("admin challenge: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	logs := p.logs()
	for _, leak := range []string{p.Password, tok, "Authorization"} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q", leak)
		}
	}
	if strings.Count(p.stderr.String(), p.Password) != 1 {
		t.Errorf("the initial password should appear exactly once on stderr")
	}
}

// TestRestart: a restart keeps the secret, so tokens stay valid and no new
// password is made; deleting secret.bin and restarting invalidates them.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	password := p.Password
	tok := p.login(password)
	p.do("POST", "/api/ack", `{"count":1}`, bearer(tok))
	p.stop()

	p = start(t, dir)
	if p.Password != "" {
		t.Error("a restart printed a new initial password")
	}
	if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != 200 || r.field(t, "count") != float64(1) {
		t.Fatalf("token after restart: %d %s", r.Status, r.Body)
	}
	p.stop()

	if err := os.Remove(filepath.Join(dir, "secret.bin")); err != nil {
		t.Fatal(err)
	}
	p = start(t, dir)
	r := p.do("GET", "/api/ack", "", bearer(tok))
	// A restart forgets the replaced key, so the token is simply not
	// camd's any more: invalid_token, not secret_rotated.
	if !refusedAs(t, r, "invalid_token") {
		t.Fatalf("old token after secret rotation: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// The password survives rotation; a new login works.
	if r := p.do("GET", "/api/ack", "", bearer(p.login(password))); r.Status != 200 {
		t.Errorf("new token after rotation: %d %s", r.Status, r.Body)
	}
}

// TestCorruptSecret: a secret.bin of the wrong size is never used as a key;
// it is moved aside, logged, and replaced.
func TestCorruptSecret(t *testing.T) {
	for _, size := range []int{0, 16, 31, 33, 4096} {
		t.Run(fmt.Sprint(size, " bytes"), func(t *testing.T) {
			dir := t.TempDir()
			p := start(t, dir)
			tok := p.login(p.Password)
			p.stop()
			bad := bytes.Repeat([]byte{0xAB}, size)
			if err := os.WriteFile(filepath.Join(dir, "secret.bin"), bad, 0o600); err != nil {
				t.Fatal(err)
			}

			p = start(t, dir)
			key, err := os.ReadFile(filepath.Join(dir, "secret.bin"))
			if err != nil || len(key) != 32 {
				t.Fatalf("new secret: %d bytes, %v", len(key), err)
			}
			moved, _ := filepath.Glob(filepath.Join(dir, "secret.bin.bad-*"))
			if len(moved) != 1 {
				t.Fatalf("moved-aside files: %v", moved)
			}
			if kept, _ := os.ReadFile(moved[0]); !bytes.Equal(kept, bad) {
				t.Error("the bad file was not kept as it was")
			}
			if !strings.Contains(p.logs(), `"level":"ERROR"`) || !strings.Contains(p.logs(), "moved it aside") {
				t.Errorf("no error logged:\n%s", p.logs())
			}
			for _, enc := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)} {
				if strings.Contains(p.stderr.String(), enc) {
					t.Error("the secret appears in the logs")
				}
			}
			if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != http.StatusUnauthorized {
				t.Errorf("token of the old secret: %d", r.Status)
			}
		})
	}
}

// TestFileModes: everything in the data directory is private, and a secret
// made readable by others is tightened back with a warning.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	p := start(t, dir)
	tok := p.login(p.Password)
	p.do("POST", "/api/ack", `{"count":1}`, bearer(tok))
	p.stop()

	want := map[string]fs.FileMode{".": 0o700, "secret.bin": 0o600, "password.hash": 0o600, "ack": 0o700, "ack/ack.json": 0o600}
	for name, mode := range want {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %v, want %v", name, got, mode)
		}
	}
	hash, _ := os.ReadFile(filepath.Join(dir, "password.hash"))
	if !strings.HasPrefix(string(hash), "$argon2id$v=19$m=") || strings.Contains(string(hash), p.Password) {
		t.Errorf("password.hash = %q: want an argon2id PHC string, never the password", hash)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	secret := filepath.Join(dir, "secret.bin")
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	p = start(t, dir)
	if info, _ := os.Stat(secret); info.Mode().Perm() != 0o600 {
		t.Errorf("loose secret not tightened: %v", info.Mode().Perm())
	}
	if !strings.Contains(p.logs(), `"level":"WARN"`) || !strings.Contains(p.logs(), "tightened it to 0600") {
		t.Errorf("no warning logged:\n%s", p.logs())
	}
	if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != 200 {
		t.Errorf("tightening changed the secret: %d", r.Status)
	}
}

// TestConcurrentFirstStart: several processes starting at once on an empty
// data directory end up with one secret and one password.
func TestConcurrentFirstStart(t *testing.T) {
	for round := range 5 {
		dir := t.TempDir()
		const n = 4
		procs := make([]*proc, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				p, err := tryStart(t, dir)
				if err != nil {
					t.Error(err)
				}
				procs[i] = p
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		var password string
		for _, p := range procs {
			if p.Password != "" {
				if password != "" {
					t.Fatalf("round %d: two processes printed an initial password", round)
				}
				password = p.Password
			}
		}
		if password == "" {
			t.Fatalf("round %d: no process printed the initial password", round)
		}
		// A token from any process verifies on every other: one secret.
		for i, a := range procs {
			tok := a.login(password)
			b := procs[(i+1)%n]
			if r := b.do("GET", "/admin", "", basicAuth("owner", password)); r.Status != 200 {
				t.Errorf("round %d: process %d refuses the password: %d", round, (i+1)%n, r.Status)
			}
			if r := b.do("POST", "/api/ack", `{"count":1}`, bearer(tok)); r.Status != 200 {
				t.Errorf("round %d: token from process %d refused by %d: %d", round, i, (i+1)%n, r.Status)
			}
		}
		for _, p := range procs {
			p.stop()
		}
	}
}

// TestAckSurvivesKill9: a stream of acks is cut by kill -9 at a random
// moment; after a restart the stored ack is the last one answered 200 or the
// one in flight at the kill, never an older one, and the data directory is
// intact.
func TestAckSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	password := p.Password
	for round := range 10 {
		tok := p.login(password)
		acked := make(chan int, 1)      // the last count answered 200
		first := make(chan struct{}, 1) // the first count answered 200
		go func() {
			last := -1
			defer func() { acked <- last }()
			for i := 0; ; i++ {
				r, err := p.try("POST", "/api/ack", fmt.Sprintf(`{"count":%d}`, i), bearer(tok))
				if err != nil {
					return // killed
				}
				if r.Status != 200 {
					t.Errorf("round %d: ack %d: %d %s", round, i, r.Status, r.Body)
					return
				}
				if last = i; i == 0 {
					first <- struct{}{}
				}
			}
		}()
		// The kill comes at a random moment after the first answer: on a
		// busy machine a fixed delay could end before any ack.
		select {
		case <-first:
		case <-time.After(10 * time.Second):
		}
		time.Sleep(time.Duration(rand.IntN(80)) * time.Millisecond)
		p.kill()
		last := <-acked
		if last < 0 {
			t.Fatalf("round %d: no ack was answered before the kill", round)
		}

		p = start(t, dir)
		r := p.do("GET", "/api/ack", "", bearer(tok))
		if r.Status != 200 {
			t.Fatalf("round %d: after kill -9: %d %s", round, r.Status, r.Body)
		}
		if got := int(r.field(t, "count").(float64)); got != last && got != last+1 {
			t.Errorf("round %d: stored count %d, want %d (answered 200) or %d (in flight)", round, got, last, last+1)
		}
	}
}

// TestPasswd: the password set by camd passwd works on a running server
// without a restart, and short passwords are refused.
func TestPasswd(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	old := p.Password

	tests := []struct {
		name  string
		stdin string
		code  int
		out   string
	}{
		{"too short", "short7!\n", 1, "password too short: use at least 8 characters"},
		{"empty", "", 1, "no password on stdin"},
		{"good", "correct horse battery\n", 0, "owner password updated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, tc.stdin, "passwd", "--data-dir", dir)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("exit %d, output %q; want %d and %q", code, out, tc.code, tc.out)
			}
			if strings.Contains(out, strings.TrimSpace(tc.stdin)) && tc.stdin != "" {
				t.Errorf("output echoes the password: %q", out)
			}
		})
	}
	if r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+old+`"}`); r.Status != 401 {
		t.Errorf("old password still works: %d", r.Status)
	}
	p.login("correct horse battery")
	if r := p.do("GET", "/admin", "", basicAuth("owner", "correct horse battery")); r.Status != 200 {
		t.Errorf("admin with the new password: %d", r.Status)
	}
	// CRLF from a Windows-edited provisioning file is trimmed.
	if code, out := run(t, "windows line end\r\n", "passwd", "--data-dir", dir); code != 0 {
		t.Fatalf("passwd: %d %s", code, out)
	}
	p.login("windows line end")
}

// TestExternalSecretFile: CAMD_SECRET_FILE shared by two servers with their
// own data directories; a token from one verifies on the other, and the file
// is never written.
func TestExternalSecretFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shared-secret")
	key := bytes.Repeat([]byte{0x5A}, 32)
	if err := os.WriteFile(secret, key, 0o400); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(secret, old, old); err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := start(t, dirA, "CAMD_SECRET_FILE="+secret)
	// B gets the file by flag, which wins over a variable naming no file.
	b := start(t, dirB, "--secret-file="+secret, "CAMD_SECRET_FILE=/nonexistent")
	tok := a.login(a.Password)
	if r := b.do("POST", "/api/ack", `{"count":2}`, bearer(tok)); r.Status != 200 {
		t.Fatalf("token from A on B: %d %s", r.Status, r.Body)
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "secret.bin")); err == nil {
			t.Errorf("%s/secret.bin was made although a secret file was given", dir)
		}
	}
	info, _ := os.Stat(secret)
	got, _ := os.ReadFile(secret)
	if !bytes.Equal(got, key) || !info.ModTime().Equal(old) || info.Mode().Perm() != 0o400 {
		t.Errorf("the external secret was touched: mode %v, mtime %v", info.Mode().Perm(), info.ModTime())
	}

	for _, size := range []int{0, 31, 33} {
		bad := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(bad, make([]byte, size), 0o400)
		_, err := tryStart(t, t.TempDir(), "CAMD_SECRET_FILE="+bad)
		if err == nil || !strings.Contains(err.Error(), "secret must be exactly 32 bytes") {
			t.Errorf("%d-byte external secret: %v", size, err)
		}
	}
}

// TestCLI: the interface contract of the command line.
func TestCLI(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"version", []string{"version"}, 0, []string{"camd "}},
		{"help", []string{"--help"}, 0, []string{"camd [serve]", "camd passwd", "camd version",
			"--listen", "CAMD_LISTEN", "--data-dir", "CAMD_DATA_DIR", "--secret-file", "CAMD_SECRET_FILE",
			"--token-ttl", "CAMD_TOKEN_TTL", "--log-format", "CAMD_LOG_FORMAT", "flags win"}},
		{"serve help", []string{"serve", "-h"}, 0, []string{"CAMD_LISTEN"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"unknown flag", []string{"--nope"}, 2, []string{"flag provided but not defined: -nope"}},
		{"bad ttl", []string{"--token-ttl", "10s", "--data-dir", t.TempDir()}, 2, []string{"--token-ttl 10s (CAMD_TOKEN_TTL): must be between 1m0s and 24h0m0s"}},
		{"unwritable data dir", []string{"--data-dir", "/proc/camd-e2e", "--listen", "127.0.0.1:0"}, 1, []string{"/proc/camd-e2e"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestEnvironment: CAMD_* variables configure the server, and flags win.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, "CAMD_TOKEN_TTL=5m", "CAMD_LOG_FORMAT=text") // --log-format json on the command line wins
	r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+p.Password+`"}`)
	if r.field(t, "expires_in") != float64(300) {
		t.Errorf("CAMD_TOKEN_TTL=5m: expires_in %v", r.field(t, "expires_in"))
	}
	if !strings.Contains(p.logs(), `"msg":"listening"`) {
		t.Errorf("the --log-format flag did not win over CAMD_LOG_FORMAT:\n%s", p.logs())
	}
	envDir := t.TempDir()
	q := start(t, dir, "CAMD_DATA_DIR="+envDir) // --data-dir dir wins
	q.stop()
	if entries, _ := os.ReadDir(envDir); len(entries) != 0 {
		t.Errorf("CAMD_DATA_DIR won over --data-dir: %v", entries)
	}
}

// TestHealthcheck: camd healthcheck finds the local server from the same
// flags and variables, over HTTP and HTTPS, and fails when none answers.
func TestHealthcheck(t *testing.T) {
	for _, tlsMode := range []string{"off", "auto"} {
		t.Run("tls "+tlsMode, func(t *testing.T) {
			p := start(t, t.TempDir(), "--tls="+tlsMode)
			port := p.URL[strings.LastIndex(p.URL, ":")+1:]
			if code, out := run(t, "", "healthcheck", "--listen=:"+port, "--tls="+tlsMode); code != 0 {
				t.Errorf("healthcheck of a running server: %d %s", code, out)
			}
			p.stop()
			if code, _ := run(t, "", "healthcheck", "--listen=127.0.0.1:"+port, "--tls="+tlsMode); code != 1 {
				t.Errorf("healthcheck with no server: exit %d, want 1", code)
			}
		})
	}
}
