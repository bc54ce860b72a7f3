package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camd/app"
	"camd/auth"
	"camd/config"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/ntpclock"
)

// fakeModule stands for a module from outside camd: it declares two scopes
// and a switch.
type fakeModule struct{}

func (fakeModule) Provision(app.Deps) error { return nil }

var fakeInfo = app.ModuleInfo{
	ID:  "fake",
	New: func() app.Module { return fakeModule{} },
	Scopes: []auth.Scope{
		{Name: "fake", Description: "take fake pictures", Default: true},
		{Name: "fake:read", Description: "look at fake pictures only"},
	},
	Flags: []config.Flag{{Name: "fake-switch", Env: "CAMD_FAKE_SWITCH", Usage: "a switch of the fake module", Default: "true", Bool: true}},
}

// result is one Main run.
type result struct {
	code           int
	stdout, stderr string
}

// runMain runs Main with the fake module's registry, stdin and env (a
// map; nothing from the real environment).
func runMain(t *testing.T, reg *app.Registry, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, Options{
		Registry: reg, Version: "v9.9.9-test",
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		// No machine paths: the data directory is always given.
		System: config.System{IsMountPoint: func(string) bool { return false }, IsDir: func(string) bool { return false }},
	})
	return result{code, stdout.String(), stderr.String()}
}

// expand replaces DIR in args by dir.
func expand(args []string, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "DIR", dir)
	}
	return out
}

// TestClientArgs: flags and the client's name in any order, module flags
// included, through to the client registry.
func TestClientArgs(t *testing.T) {
	reg := app.NewRegistry(fakeInfo)
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		output string   // in stdout or stderr
		scopes []string // of client porch after the command; nil: none made
	}{
		{"module switch before the name", []string{"client", "add", "--fake-switch", "porch", "--data-dir", "DIR"}, nil, 0, "created client porch", []string{"fake"}},
		{"module switch with a value", []string{"client", "add", "--fake-switch=false", "porch", "--data-dir=DIR"}, nil, 0, "created client porch", []string{"fake"}},
		{"scope after the name", []string{"client", "add", "porch", "--scope", "fake", "--data-dir", "DIR"}, nil, 0, "with scopes fake;", []string{"fake"}},
		{"scope= before the name", []string{"client", "add", "--scope=fake:read", "porch", "--data-dir", "DIR"}, nil, 0, "with scopes fake:read;", []string{"fake:read"}},
		{"scope repeated", []string{"client", "add", "-scope", "fake:read", "--data-dir", "DIR", "porch", "--scope", "fake"}, nil, 0, "with scopes fake,fake:read;", []string{"fake", "fake:read"}},
		{"data dir from the environment", []string{"client", "add", "porch"}, map[string]string{"CAMD_DATA_DIR": "DIR"}, 0, "created client porch", []string{"fake"}},
		{"double dash", []string{"client", "add", "--data-dir", "DIR", "--", "porch"}, nil, 0, "created client porch", []string{"fake"}},
		{"no name", []string{"client", "add", "--data-dir", "DIR"}, nil, 2, "add takes 1 argument", nil},
		{"two names", []string{"client", "add", "porch", "gate", "--data-dir", "DIR"}, nil, 2, "add takes 1 argument", nil},
		{"name after double dash is still counted", []string{"client", "add", "porch", "--data-dir", "DIR", "--", "--scope"}, nil, 2, "add takes 1 argument", nil},
		{"unknown flag", []string{"client", "add", "porch", "--nope", "--data-dir", "DIR"}, nil, 2, "flag provided but not defined: -nope", nil},
		{"scope needs a value", []string{"client", "add", "porch", "--data-dir", "DIR", "--scope"}, nil, 2, "flag needs an argument: -scope", nil},
		{"bad switch value", []string{"client", "add", "porch", "--fake-switch=maybe", "--data-dir", "DIR"}, nil, 2, "want true or false", nil},
		{"bad setting", []string{"client", "add", "porch", "--token-ttl", "1s", "--data-dir", "DIR"}, nil, 2, "--token-ttl 1s", nil},
		{"bad setting from the environment", []string{"client", "add", "porch", "--data-dir", "DIR"}, map[string]string{"CAMD_LOG_FORMAT": "xml"}, 2, "--log-format", nil},
		{"unknown scope", []string{"client", "add", "porch", "--scope", "admin", "--data-dir", "DIR"}, nil, 1, `unknown scope "admin" (known: fake, fake:read)`, nil},
		{"bad name", []string{"client", "add", "../porch", "--data-dir", "DIR"}, nil, 1, "camd client add: ", nil},
		{"scope on list", []string{"client", "list", "--scope", "fake", "--data-dir", "DIR"}, nil, 2, "flag provided but not defined: -scope", nil},
		{"name on list", []string{"client", "list", "porch", "--data-dir", "DIR"}, nil, 2, "list takes 0 argument", nil},
		{"revoke unknown", []string{"client", "revoke", "porch", "--data-dir", "DIR"}, nil, 1, "camd client revoke: no client named porch\n", nil},
		{"unknown verb", []string{"client", "frob", "--data-dir", "DIR"}, nil, 2, `unknown command "frob"`, nil},
		{"no verb", []string{"client"}, nil, 2, "camd client add NAME", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = strings.ReplaceAll(v, "DIR", dir)
			}
			r := runMain(t, reg, "", env, expand(tc.args, dir)...)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.output) {
				t.Fatalf("exit %d, want %d with %q;\nstdout: %s\nstderr: %s", r.code, tc.code, tc.output, r.stdout, r.stderr)
			}
			if tc.code == 0 {
				// The token alone on stdout, for scripts.
				if tok := strings.TrimSpace(r.stdout); strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
					t.Errorf("stdout is not one token: %q", r.stdout)
				}
				if strings.Contains(r.stderr, strings.TrimSpace(r.stdout)) {
					t.Error("the token is on stderr too")
				}
			}
			list := runMain(t, reg, "", nil, "client", "list", "--data-dir", dir)
			if tc.scopes == nil {
				if strings.Contains(list.stdout, "porch") {
					t.Errorf("a refused command made a client:\n%s", list.stdout)
				}
				return
			}
			if list.code != 0 {
				t.Fatalf("client list: %d %s", list.code, list.stderr)
			}
			want := "porch  " + strings.Join(tc.scopes, ",") + " "
			if !strings.Contains(list.stdout, want) {
				t.Errorf("client list lacks %q:\n%s", want, list.stdout)
			}
		})
	}
}

// TestClientLifecycle: add, a duplicate refused, revoke, revoke again.
func TestClientLifecycle(t *testing.T) {
	reg := app.NewRegistry(fakeInfo)
	dir := t.TempDir()
	steps := []struct {
		args   []string
		code   int
		output string
	}{
		{[]string{"client", "add", "porch"}, 0, "created client porch"},
		{[]string{"client", "add", "porch", "--scope", "fake:read"}, 1, "a client named porch exists"},
		{[]string{"client", "list"}, 0, "porch  fake "},
		{[]string{"client", "revoke", "porch"}, 0, "revoked client porch"},
		{[]string{"client", "revoke", "porch"}, 1, "no client named porch"},
	}
	for _, s := range steps {
		r := runMain(t, reg, "", map[string]string{"CAMD_DATA_DIR": dir}, s.args...)
		if r.code != s.code || !strings.Contains(r.stdout+r.stderr, s.output) {
			t.Fatalf("%q: exit %d, want %d with %q;\nstdout: %s\nstderr: %s", s.args, r.code, s.code, s.output, r.stdout, r.stderr)
		}
	}
	if r := runMain(t, reg, "", nil, "client", "list", "--data-dir", dir); strings.Contains(r.stdout, "porch") {
		t.Errorf("revoked client listed:\n%s", r.stdout)
	}
}

// TestClientHelp: the help lists every scope of the registry, with its
// description, marking the default ones.
func TestClientHelp(t *testing.T) {
	reg := app.NewRegistry(fakeInfo)
	for _, args := range [][]string{
		{"client", "--help"},
		{"client", "help"},
		{"client", "-h"},
		{"client", "add", "--help"},
		{"client", "add", "porch", "-h"},
		{"client", "list", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runMain(t, reg, "", nil, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			lines := map[string]string{}
			for _, l := range strings.Split(r.stdout, "\n") {
				if f := strings.Fields(l); len(f) > 1 {
					lines[f[0]] = l
				}
			}
			for _, sc := range fakeInfo.Scopes {
				l, ok := lines[sc.Name]
				if !ok || !strings.Contains(l, sc.Description) {
					t.Errorf("no line for scope %s with its description:\n%s", sc.Name, r.stdout)
				}
				if got := strings.HasSuffix(l, "(default)"); got != sc.Default {
					t.Errorf("scope %s marked default: %v, want %v: %q", sc.Name, got, sc.Default, l)
				}
			}
		})
	}
	// A registry without scoped modules says so rather than list none.
	if r := runMain(t, app.NewRegistry(), "", nil, "client", "add", "--help"); r.code != 0 || !strings.Contains(r.stdout, "no module that declares one") {
		t.Errorf("help without scopes: %d %s", r.code, r.stdout)
	}
}

// TestCommands: the top-level commands, their usage errors and help.
func TestCommands(t *testing.T) {
	reg := app.NewRegistry(fakeInfo)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"version", []string{"version"}, 0, "camd v9.9.9-test\n", ""},
		{"help", []string{"help"}, 0, "camd [serve] [flags]", ""},
		{"help lists module flags", []string{"--help"}, 0, "--fake-switch  [CAMD_FAKE_SWITCH]", ""},
		{"serve help", []string{"serve", "-h"}, 0, "camd passwd [flags]", ""},
		{"unknown command", []string{"frob"}, 2, "", `camd: unknown command "frob"`},
		{"unknown flag", []string{"--frob"}, 2, "", "camd serve: flag provided but not defined: -frob"},
		{"argument to serve", []string{"serve", "extra"}, 2, "", `unexpected argument "extra"`},
		{"bad listen", []string{"serve", "--listen", "nowhere"}, 2, "", "--listen"},
		{"passwd usage", []string{"passwd", "--nope"}, 2, "", "camd passwd: flag provided"},
		{"healthcheck usage", []string{"healthcheck", "x"}, 2, "", `unexpected argument "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, reg, "", nil, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, want %d;\nstdout %q, want %q\nstderr %q, want %q", r.code, tc.code, r.stdout, tc.stdout, r.stderr, tc.stderr)
			}
		})
	}
}

// TestPasswd: camd passwd from a pipe, checked by logging in through the
// auth service.
func TestPasswd(t *testing.T) {
	reg := app.NewRegistry(fakeInfo)
	dir := t.TempDir()
	tests := []struct {
		name, stdin string
		code        int
		output      string
		works       string // a password that logs in afterwards
	}{
		{"too short", "short7!\n", 1, "camd passwd: password too short: use at least 8 characters", ""},
		{"empty", "", 1, "no password on stdin", ""},
		{"good", "correct horse battery\n", 0, "owner password updated in " + filepath.Join(dir, "password.hash"), "correct horse battery"},
		{"CRLF trimmed", "windows line end\r\n", 0, "owner password updated", "windows line end"},
		{"no newline", "last line unended", 0, "owner password updated", "last line unended"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, reg, tc.stdin, nil, "passwd", "--data-dir", dir)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.output) {
				t.Fatalf("exit %d, want %d with %q: %s", r.code, tc.code, tc.output, r.stderr)
			}
			if tc.stdin != "" && strings.Contains(r.stdout+r.stderr, strings.TrimSpace(tc.stdin)) {
				t.Errorf("the password was echoed: %q", r.stdout+r.stderr)
			}
			if tc.works == "" {
				return
			}
			d, err := datadir.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := auth.Open(auth.Config{Dir: d, TokenTTL: time.Hour, Clock: clock.Func(time.Now), LockoutIPv6Prefix: 64})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Login(context.Background(), "127.0.0.1:1", auth.Owner, tc.works); err != nil {
				t.Errorf("login with the new password: %v", err)
			}
		})
	}
}

// TestOfflineNow: a command's clock never reads before the build or the
// last time the server trusted its clock.
func TestOfflineNow(t *testing.T) {
	far := time.Date(2200, 1, 2, 3, 4, 5, 0, time.UTC)
	farther := far.Add(24 * time.Hour)
	tests := []struct {
		name      string
		buildTime string
		lastGood  time.Time // zero: no file
		atLeast   time.Time
	}{
		{"system clock", "", time.Time{}, time.Now().Add(-time.Minute)},
		{"build in the future", far.Format(time.RFC3339), time.Time{}, far},
		{"last good in the future", "", far, far},
		{"the later of the two", far.Format(time.RFC3339), farther, farther},
		{"a bad stamp is the floor only", "yesterday", time.Time{}, time.Now().Add(-time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := datadir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if !tc.lastGood.IsZero() {
				if err := os.WriteFile(dir.Join(ntpclock.LastGoodFileName), []byte(tc.lastGood.Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := offlineNow(dir, tc.buildTime); got.Before(tc.atLeast) {
				t.Errorf("offlineNow = %v, want at least %v", got, tc.atLeast)
			}
		})
	}
	// Through to what camd client add records.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ntpclock.LastGoodFileName), []byte(far.Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := app.NewRegistry(fakeInfo)
	if r := runMain(t, reg, "", nil, "client", "add", "porch", "--data-dir", dir); r.code != 0 {
		t.Fatalf("client add: %d %s", r.code, r.stderr)
	}
	if r := runMain(t, reg, "", nil, "client", "list", "--data-dir", dir); !strings.Contains(r.stdout, "2200-01-02") {
		t.Errorf("client created before the last trusted time:\n%s", r.stdout)
	}
}

// TestHealthcheck: against real servers on loopback.
func TestHealthcheck(t *testing.T) {
	healthz := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
		})
	}
	up := httptest.NewServer(healthz(http.StatusOK))
	defer up.Close()
	down := httptest.NewServer(healthz(http.StatusServiceUnavailable))
	defer down.Close()
	upTLS := httptest.NewTLSServer(healthz(http.StatusOK))
	defer upTLS.Close()
	closed := httptest.NewServer(healthz(http.StatusOK))
	closed.Close()
	port := func(s *httptest.Server) string {
		u, err := url.Parse(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		return u.Port()
	}

	reg := app.NewRegistry(fakeInfo)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"up", []string{"--listen", "127.0.0.1:" + port(up)}, 0, ""},
		{"wildcard listener on loopback", []string{"--listen", ":" + port(up)}, 0, ""},
		{"tls", []string{"--listen", "127.0.0.1:" + port(upTLS), "--tls", "auto"}, 0, ""},
		{"unhealthy", []string{"--listen", "127.0.0.1:" + port(down)}, 1, "503 Service Unavailable"},
		{"nothing listening", []string{"--listen", "127.0.0.1:" + port(closed)}, 1, "healthcheck: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, reg, "", nil, append([]string{"healthcheck", "--data-dir", t.TempDir()}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, want %d with %q: %s", r.code, tc.code, tc.stderr, r.stderr)
			}
		})
	}
}
