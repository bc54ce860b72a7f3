package snapshot_test

import (
	"bytes"
	"image/color"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"camd/internal/camdtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	camdtest.RemoveBuilds()
	os.Exit(code)
}

// Binaries, as go build names them.
const (
	snapshotBin = "camd/examples/snapshot/cmd/camd-snapshot"
	standardBin = "camd"
)

// The scope's line in client add --help: its name and description.
const scopeHelp = "snapshot  fetch the camera's latest still image"

// TestEndToEnd builds camd-snapshot as a firmware builder would and runs it
// as a process: the module's scope is offered by the admin page and the
// CLI, the scope guards the route both ways, revocation takes effect on the
// next request, the count ends up in the module's own directory, and the
// standard camd binary has no such route.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	bin := camdtest.Build(t, snapshotBin)

	out, err := exec.Command(bin, "client", "add", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), scopeHelp) {
		t.Errorf("camd-snapshot client add --help: %v, want the line %q:\n%s", err, scopeHelp, out)
	}

	data := t.TempDir()
	still := filepath.Join(t.TempDir(), "still.jpg")
	want := jpegOf(t, color.RGBA{30, 160, 60, 255})
	if err := os.WriteFile(still, want, 0o644); err != nil {
		t.Fatal(err)
	}
	// The module's flag by its variable, as an init script would set it.
	p := camdtest.Start(t, camdtest.Options{Bin: bin, Dir: data, Env: []string{"CAMD_SNAPSHOT_FILE=" + still}})
	c := &cam{t: t, url: p.URL, password: p.Password}

	page := c.do("GET", "/admin", "", "Authorization", basic(c.password), "Accept", "text/html")
	if page.status != http.StatusOK || !bytes.Contains(page.body, []byte(`name="scopes" value="snapshot"`)) ||
		!bytes.Contains(page.body, []byte("fetch the camera&#39;s latest still image")) {
		t.Errorf("admin page: %d, want a snapshot scope checkbox with its description:\n%s", page.status, page.body)
	}

	if r := c.do("GET", "/openapi.yaml", ""); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`enum: ["ack", "ack:read", "snapshot"]`)) {
		t.Errorf("OpenAPI document: %d, want the Scope enum to list snapshot", r.status)
	}

	doorbell := c.client("doorbell", "snapshot")
	porch := c.client("porch", "ack")

	r := c.do("GET", "/api/snapshot", "", bearer(doorbell)...)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/jpeg" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("snapshot with its scope: %d %q %q %s", r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"), r.body)
	}
	if _, err := jpeg.Decode(bytes.NewReader(r.body)); err != nil || !bytes.Equal(r.body, want) {
		t.Errorf("snapshot body: %d bytes, decode error %v; want the %d bytes of the file", len(r.body), err, len(want))
	}

	refusals := []struct {
		name         string
		method, path string
		body, token  string
		status       int
		code         string
	}{
		{"snapshot scope posts an ack", "POST", "/api/ack", `{"count":1}`, doorbell, http.StatusForbidden, "insufficient_scope"},
		{"ack scope fetches a snapshot", "GET", "/api/snapshot", "", porch, http.StatusForbidden, "insufficient_scope"},
	}
	for _, tt := range refusals {
		if r := c.do(tt.method, tt.path, tt.body, bearer(tt.token)...); r.status != tt.status || r.code() != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}

	if r := c.do("DELETE", "/admin/clients/doorbell", "", "Authorization", basic(c.password)); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/api/snapshot", "", bearer(doorbell)...); r.status != http.StatusUnauthorized || r.code() != "token_revoked" {
		t.Errorf("revoked client: %d %s, want 401 token_revoked", r.status, r.body)
	}

	if code, err := p.Stop(); err != nil || code != 0 {
		t.Fatalf("stop: exit %d, %v\n%s", code, err, p.Logs())
	}
	// One snapshot served: the refused and revoked requests do not count.
	if got := readCount(t, data); got != 1 {
		t.Errorf("DATA/snapshot/count.json says %d served, want 1", got)
	}
	if _, err := os.Stat(filepath.Join(data, "count.json")); !os.IsNotExist(err) {
		t.Errorf("count.json at the top of the data directory: %v", err)
	}

	t.Run("standard camd", func(t *testing.T) {
		std := camdtest.Build(t, standardBin)
		out, err := exec.Command(std, "client", "add", "--help").CombinedOutput()
		if err != nil || strings.Contains(string(out), "snapshot") {
			t.Errorf("camd client add --help: %v, want no snapshot scope:\n%s", err, out)
		}
		p := camdtest.Start(t, camdtest.Options{Bin: std, Env: []string{"CAMD_SNAPSHOT_FILE=" + still}})
		c := &cam{t: t, url: p.URL, password: p.Password}
		if r := c.do("GET", "/openapi.yaml", ""); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`enum: ["ack", "ack:read"]`)) {
			t.Errorf("OpenAPI document: %d, want the Scope enum without snapshot", r.status)
		}
		porch := c.client("porch", "ack")
		if r := c.do("GET", "/api/snapshot", "", bearer(porch)...); r.status != http.StatusNotFound || r.code() != "not_found" {
			t.Errorf("GET /api/snapshot: %d %s, want 404 not_found", r.status, r.body)
		}
		body := `{"name":"doorbell","scopes":["snapshot"]}`
		if r := c.do("POST", "/admin/clients", body, "Authorization", basic(c.password)); r.status != http.StatusBadRequest || r.code() != "invalid_body" {
			t.Errorf("client with scope snapshot: %d %s, want 400 invalid_body", r.status, r.body)
		}
		if _, err := os.Stat(filepath.Join(p.Dir, "snapshot")); !os.IsNotExist(err) {
			t.Errorf("a build without the module made its directory: %v", err)
		}
	})
}
