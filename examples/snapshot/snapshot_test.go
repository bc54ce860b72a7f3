package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camd/app"
	"camd/config"
	"camd/examples/snapshot"
	"camd/internal/testlog"
	"camd/modules/ack"
	"camd/modules/admin"
	"camd/modules/apidoc"
	"camd/modules/auth"
	"camd/modules/health"
	"camd/platform/clock"
	"camd/platform/password"
)

// cheapHash keeps the tests fast; the shipped cost is camd's business.
var cheapHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// registry is the standard set plus the snapshot module, named one by one
// rather than through init() side effects, as camd-snapshot has them.
func registry() *app.Registry {
	return app.NewRegistry(ack.Info(), admin.Info(), apidoc.Info(), auth.Info(), health.Info(), snapshot.Info())
}

// config is camd's test configuration with the module's flag set to file
// ("" for none).
func testConfig(dir, file string) config.Config {
	return config.Config{Listen: "127.0.0.1:0", DataDir: dir, TokenTTL: time.Hour, LogFormat: "text",
		ClockMode: "system", NTPInterval: time.Hour, Modules: config.Values{snapshot.FileFlag: file}}
}

// newApp provisions camd with the standard set and the snapshot module,
// and returns the initial owner password with it.
func newApp(t *testing.T, cfg config.Config, logs *testlog.Buffer) (*app.App, string, error) {
	t.Helper()
	var stderr bytes.Buffer
	a, err := app.New(cfg, app.Options{
		Registry: registry(), Log: slog.New(slog.NewTextHandler(logs, nil)), Clock: clock.Func(time.Now),
		Stderr: &stderr, Version: "test", PasswordParams: &cheapHash,
	})
	pw, _ := strings.CutPrefix(strings.TrimSpace(stderr.String()), "initial owner password: ")
	return a, pw, err
}

// cam is camd serving on a loopback port until stop or the test's end.
type cam struct {
	t        *testing.T
	url      string
	password string
	logs     *testlog.Buffer
	stop     func()
}

func serve(t *testing.T, cfg config.Config) *cam {
	t.Helper()
	logs := &testlog.Buffer{}
	a, pw, err := newApp(t, cfg, logs)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	stopped := false
	c := &cam{t: t, url: "http://" + ln.Addr().String(), password: pw, logs: logs}
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(c.stop)
	return c
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// code is the JSON error body's code, "" when there is none.
func (a answer) code() string {
	var b struct{ Code string }
	_ = json.Unmarshal(a.body, &b)
	return b.Code
}

func (c *cam) do(method, path, body string, hdr ...string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// client creates a client with scopes through the admin API and returns its
// token.
func (c *cam) client(name string, scopes ...string) string {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	req, _ := http.NewRequest("POST", c.url+"/admin/clients", bytes.NewReader(body))
	req.SetBasicAuth("owner", c.password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("create client %s: %d %v", name, resp.StatusCode, err)
	}
	return created.Token
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestDefaultCard: without --snapshot-file the module serves its generated
// card, to the snapshot scope (and the owner) only.
func TestDefaultCard(t *testing.T) {
	c := serve(t, testConfig(t.TempDir(), ""))
	snap := c.client("doorbell", snapshot.Scope)
	acker := c.client("porch", ack.Scope)

	r := c.do("GET", snapshot.Path, "", bearer(snap)...)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/jpeg" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("snapshot: %d %q %q", r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
	}
	img, err := jpeg.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("the card does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != snapshot.CardWidth || b.Dy() != snapshot.CardHeight {
		t.Errorf("card is %v, want %dx%d", b, snapshot.CardWidth, snapshot.CardHeight)
	}

	tests := []struct {
		name         string
		method, path string
		hdr          []string
		status       int
		code         string
	}{
		{"ack scope on snapshot", "GET", snapshot.Path, bearer(acker), http.StatusForbidden, "insufficient_scope"},
		{"snapshot scope on ack", "POST", "/api/ack", bearer(snap), http.StatusForbidden, "insufficient_scope"},
		{"no token", "GET", snapshot.Path, nil, http.StatusUnauthorized, "missing_token"},
		{"not a token", "GET", snapshot.Path, bearer("nope"), http.StatusUnauthorized, "invalid_token"},
		{"wrong method", "POST", snapshot.Path, bearer(snap), http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"count":1}`
			}
			r := c.do(tt.method, tt.path, body, tt.hdr...)
			if r.status != tt.status || r.code() != tt.code {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
}

// TestFile: the configured file is served as it is; while it is missing the
// answer is 503 busy with Retry-After, and a directory in its place is a
// 500 internal that names no path.
func TestFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "still.jpg")
	want := jpegOf(t, color.RGBA{200, 10, 10, 255})
	if err := os.WriteFile(file, want, 0o644); err != nil {
		t.Fatal(err)
	}
	c := serve(t, testConfig(t.TempDir(), file))
	tok := c.client("doorbell", snapshot.Scope)

	r := c.do("GET", snapshot.Path, "", bearer(tok)...)
	if r.status != http.StatusOK || !bytes.Equal(r.body, want) || r.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot: %d %q, %d bytes, want the file's %d", r.status, r.header.Get("Content-Type"), len(r.body), len(want))
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	r = c.do("GET", snapshot.Path, "", bearer(tok)...)
	if r.status != http.StatusServiceUnavailable || r.code() != "busy" || r.header.Get("Retry-After") != "1" {
		t.Errorf("missing file: %d %s Retry-After %q, want 503 busy 1", r.status, r.body, r.header.Get("Retry-After"))
	}

	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	r = c.do("GET", snapshot.Path, "", bearer(tok)...)
	if r.status != http.StatusInternalServerError || r.code() != "internal" || bytes.Contains(r.body, []byte(file)) {
		t.Errorf("directory: %d %s, want 500 internal without the path", r.status, r.body)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}

	// The pipeline's way: write aside, rename over.
	next := jpegOf(t, color.RGBA{10, 10, 200, 255})
	if err := os.WriteFile(file+".tmp", next, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	if r := c.do("GET", snapshot.Path, "", bearer(tok)...); r.status != http.StatusOK || !bytes.Equal(r.body, next) {
		t.Errorf("after the file came back: %d, %d bytes, want %d", r.status, len(r.body), len(next))
	}
	c.stop()
	logs := c.logs.String()
	if strings.Count(logs, "snapshot file missing") != 1 || !strings.Contains(logs, "snapshot file is back") {
		t.Errorf("want one warning for the missing file and one line when it is back:\n%s", logs)
	}
}

// TestValidate: a configured path that exists but cannot be served stops
// camd at start; one that does not exist yet does not.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "unreadable.jpg")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		wantErr string // "" to start
		logged  string
	}{
		{"unset", "", "", ""},
		{"not written yet", filepath.Join(dir, "later.jpg"), "", "does not exist yet"},
		{"a directory", dir, "is not a regular file", ""},
		{"unreadable", unreadable, "permission denied", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unreadable" && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			logs := &testlog.Buffer{}
			a, _, err := newApp(t, testConfig(t.TempDir(), tt.file), logs)
			if err == nil {
				a.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("app.New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--"+snapshot.FileFlag)):
				t.Fatalf("app.New: %v, want an error naming --%s and %q", err, snapshot.FileFlag, tt.wantErr)
			}
			if !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("logs lack %q:\n%s", tt.logged, logs)
			}
		})
	}
}

// TestCount: the count is in the module's own directory after stop, and
// goes on from there after a restart, on the admin page too.
func TestCount(t *testing.T) {
	data := t.TempDir()
	c := serve(t, testConfig(data, ""))
	tok := c.client("doorbell", snapshot.Scope)
	for range 3 {
		if r := c.do("GET", snapshot.Path, "", bearer(tok)...); r.status != http.StatusOK {
			t.Fatalf("snapshot: %d %s", r.status, r.body)
		}
	}
	c.do("GET", snapshot.Path, "", bearer("nope")...) // refused: not counted
	c.stop()
	if got := readCount(t, data); got != 3 {
		t.Errorf("count after stop = %d, want 3", got)
	}
	if _, err := os.Stat(filepath.Join(data, snapshot.StateFile)); err == nil {
		t.Error("the count is at the top of the data directory, not in the module's own")
	}

	pw := c.password
	c = serve(t, testConfig(data, ""))
	page := func() string {
		r := c.do("GET", "/admin", "", "Authorization", basic(pw), "Accept", "text/html")
		if r.status != http.StatusOK {
			t.Fatalf("admin page: %d %s", r.status, r.body)
		}
		_, section, _ := strings.Cut(string(r.body), `<section id="snapshots">`)
		section, _, _ = strings.Cut(section, "</section>")
		return section
	}
	// The count outlives the restart; when the last was served does not.
	if s := page(); !strings.Contains(s, "3 served (generated test card).") || strings.Contains(s, "<time") {
		t.Errorf("admin page after the restart, want 3 served and no time:\n%s", s)
	}
	c.do("GET", snapshot.Path, "", bearer(tok)...)
	if s := page(); !strings.Contains(s, "4 served (generated test card), <time") {
		t.Errorf("admin page, want 4 served and when:\n%s", s)
	}
	c.stop()
	if got := readCount(t, data); got != 4 {
		t.Errorf("count after the restart = %d, want 4", got)
	}
}

// TestDamagedCount: a damaged count does not keep the cam down: it is
// moved aside, kept, and counting starts from zero.
func TestDamagedCount(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, snapshot.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, snapshot.ID, snapshot.StateFile), []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := serve(t, testConfig(data, ""))
	c.do("GET", snapshot.Path, "", bearer(c.client("doorbell", snapshot.Scope))...)
	c.stop()
	if !strings.Contains(c.logs.String(), "snapshot count damaged") {
		t.Errorf("no warning for the damaged count:\n%s", c.logs)
	}
	kept, _ := filepath.Glob(filepath.Join(data, snapshot.ID, snapshot.StateFile+".bad-*"))
	if len(kept) != 1 {
		t.Fatalf("damaged count kept as %q, want one .bad- file", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || string(b) != "{torn" {
		t.Errorf("kept file holds %q, %v", b, err)
	}
	if got := readCount(t, data); got != 1 {
		t.Errorf("count = %d, want 1", got)
	}
}

// TestCloseWithoutServe: Cleanup writes what Run did not, for an App that
// was provisioned and never served; a count of zero is never written.
func TestCloseWithoutServe(t *testing.T) {
	data := t.TempDir()
	a, pw, err := newApp(t, testConfig(data, ""), &testlog.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler()
	do := func(req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	req := httptest.NewRequest("POST", "/admin/clients", strings.NewReader(`{"name":"doorbell","scopes":["snapshot"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("owner", pw)
	rec := do(req)
	var created struct{ Token string }
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || rec.Code != http.StatusCreated {
		t.Fatalf("create client: %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("GET", snapshot.Path, nil)
	req.Header.Set("Authorization", "Bearer "+created.Token)
	if rec := do(req); rec.Code != http.StatusOK {
		t.Fatalf("snapshot: %d %s", rec.Code, rec.Body)
	}
	a.Close()
	if got := readCount(t, data); got != 1 {
		t.Errorf("count after Close = %d, want 1", got)
	}

	// A second App on a fresh directory serves nothing, and writes nothing.
	empty := t.TempDir()
	if a, _, err = newApp(t, testConfig(empty, ""), &testlog.Buffer{}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(filepath.Join(empty, snapshot.ID, snapshot.StateFile)); !os.IsNotExist(err) {
		t.Errorf("a count of zero was written: %v", err)
	}
}

func basic(pw string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("owner", pw)
	return req.Header.Get("Authorization")
}

func readCount(t *testing.T, data string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, snapshot.ID, snapshot.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Served uint64 }
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return s.Served
}

// jpegOf is a small one-colour JPEG, standing in for the pipeline's still.
func jpegOf(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
