package app_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"camd/app"
	"camd/config"
	"camd/internal/apitest"
	"camd/modules/apidoc"
)

// TestRoutesDocumented: every route camd mounts is in the OpenAPI document
// and every operation there is mounted, so a new route cannot ship
// undocumented, nor a removed one stay in the document.
func TestRoutesDocumented(t *testing.T) {
	a, err := app.New(defaultConfig(t.TempDir()), app.Options{Registry: standardRegistry(), PasswordParams: &cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	v, err := apitest.Default()
	if err != nil {
		t.Fatal(err)
	}
	routes, ops := a.Routes(), v.Operations()
	for _, tc := range []struct {
		what     string
		have, in []string
	}{
		{"mounted but missing from modules/apidoc/openapi.yaml", routes, ops},
		{"in modules/apidoc/openapi.yaml but not mounted", ops, routes},
	} {
		for _, r := range tc.have {
			if !slices.Contains(tc.in, r) {
				t.Errorf("%s: %s", tc.what, r)
			}
		}
	}
}

// TestOpenAPIServed: GET /openapi.yaml answers the embedded document as
// application/yaml without credentials.
func TestOpenAPIServed(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	r := do(t, "GET", s.URL+apidoc.Path, "")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != apidoc.ContentType {
		t.Fatalf("got %d %q, want 200 %s", r.Status, r.Header.Get("Content-Type"), apidoc.ContentType)
	}
	if r.Body != string(apidoc.Document()) {
		t.Error("the served document differs from modules/apidoc/openapi.yaml")
	}
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
}

// TestOptionsAndHead holds camd to what the document says of methods it
// does not list: on every documented path OPTIONS answers 204 and HEAD 405,
// both with Allow. The OpenAPI check in do verifies the answers' shape.
func TestOptionsAndHead(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	v, err := apitest.Default()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, op := range v.Operations() {
		_, path, _ := strings.Cut(op, " ")
		paths = append(paths, strings.ReplaceAll(path, ":name", "porch-esp32"))
	}
	slices.Sort(paths)
	for _, path := range slices.Compact(paths) {
		for _, tc := range []struct {
			method string
			status int
		}{{"OPTIONS", http.StatusNoContent}, {"HEAD", http.StatusMethodNotAllowed}} {
			t.Run(tc.method+" "+path, func(t *testing.T) {
				r := do(t, tc.method, s.URL+path, "")
				if r.Status != tc.status || r.Header.Get("Allow") == "" {
					t.Errorf("got %d, Allow %q; want %d with Allow", r.Status, r.Header.Get("Allow"), tc.status)
				}
			})
		}
	}
}

// TestDocumentedAnswers sends requests whose answers the document lists but
// the other tests do not provoke, so the OpenAPI check in do sees them too.
func TestDocumentedAnswers(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.SecretFile = secretFile }})
	owner := "Authorization: Basic " + basic("owner", s.Password)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"headers over 8 KiB (and the 4 KiB net/http allows beyond)", "GET", "/healthz", "", []string{"X-Pad: " + strings.Repeat("x", 16<<10)}, http.StatusRequestHeaderFieldsTooLarge},
		{"Basic credentials not base64", "GET", "/admin/status", "", []string{"Authorization: Basic !!!"}, http.StatusBadRequest},
		{"status", "GET", "/admin/status", "", []string{owner}, http.StatusOK},
		{"rotate an external secret", "POST", "/admin/rotate-secret", "{}", []string{owner, jsonCT}, http.StatusConflict},
		{"client with an unknown scope", "POST", "/admin/clients", `{"name":"x","scopes":["admin"]}`, []string{owner, jsonCT}, http.StatusBadRequest},
		{"client with a bad name", "POST", "/admin/clients", `{"name":"a b"}`, []string{owner, jsonCT}, http.StatusBadRequest},
		{"revoke an unknown client", "DELETE", "/admin/clients/nobody", "", []string{owner}, http.StatusNotFound},
		{"password too short", "POST", "/admin/password", `{"password":"short"}`, []string{owner, jsonCT}, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, tc.method, s.URL+tc.path, tc.body, tc.headers...); r.Status != tc.status {
				t.Errorf("got %d %s, want %d", r.Status, r.Body, tc.status)
			}
		})
	}
}
