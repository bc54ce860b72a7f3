package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"camd/apierr"
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
	defer a.Close()
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
	r := do(t, "POST", s.URL+"/admin/clients", `{"name":"reader","scopes":["ack:read"]}`, jsonCT, owner)
	reader, _ := r.JSON(t)["token"].(string)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     apierr.Code // of an error; "" for a success or net/http's text/plain
	}{
		{"headers over 8 KiB (and the 4 KiB net/http allows beyond)", "GET", "/healthz", "", []string{"X-Pad: " + strings.Repeat("x", 16<<10)}, http.StatusRequestHeaderFieldsTooLarge, ""},
		{"Basic credentials not base64", "GET", "/admin/status", "", []string{"Authorization: Basic !!!"}, http.StatusBadRequest, apierr.InvalidRequest},
		{"status", "GET", "/admin/status", "", []string{owner}, http.StatusOK, ""},
		{"rotate an external secret", "POST", "/admin/rotate-secret", "{}", []string{owner, jsonCT}, http.StatusConflict, apierr.Conflict},
		{"client with an unknown scope", "POST", "/admin/clients", `{"name":"x","scopes":["admin"]}`, []string{owner, jsonCT}, http.StatusBadRequest, apierr.InvalidBody},
		{"client with a bad name", "POST", "/admin/clients", `{"name":"a b"}`, []string{owner, jsonCT}, http.StatusBadRequest, apierr.InvalidBody},
		{"client named twice", "POST", "/admin/clients", `{"name":"twice"}`, []string{owner, jsonCT}, http.StatusCreated, ""},
		{"client named twice, again", "POST", "/admin/clients", `{"name":"twice"}`, []string{owner, jsonCT}, http.StatusConflict, apierr.Conflict},
		{"revoke an unknown client", "DELETE", "/admin/clients/nobody", "", []string{owner}, http.StatusNotFound, apierr.NotFound},
		{"password too short", "POST", "/admin/password", `{"password":"short"}`, []string{owner, jsonCT}, http.StatusBadRequest, apierr.InvalidBody},
		{"login with a wrong password", "POST", "/api/login", `{"user":"owner","pass":"wrong password"}`, []string{jsonCT}, http.StatusUnauthorized, apierr.InvalidCredentials},
		{"ack with a reader's scope", "POST", "/api/ack", `{"count":1}`, []string{jsonCT, "Authorization: Bearer " + reader}, http.StatusForbidden, apierr.InsufficientScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, s.URL+tc.path, tc.body, tc.headers...)
			if r.Status != tc.status {
				t.Errorf("got %d %s, want %d", r.Status, r.Body, tc.status)
			}
			switch {
			case tc.code != "":
				checkError(t, r, tc.code)
			case tc.status == http.StatusRequestHeaderFieldsTooLarge:
				// net/http's own answer, before camd runs: text/plain, as
				// the document says (HeadersTooLarge).
				if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q, want net/http's text/plain", ct)
				}
			}
		})
	}
}

// TestErrorCodesDocumented holds the OpenAPI document to apierr, the one
// list of codes in the code: the ErrorCode enum is exactly apierr.Codes(),
// Error requires a code of that enum, and every JSON error response of
// every operation is an Error that names its codes, each one a code whose
// status (apierr.Code.Status) is the response's. So a client can read off
// the document which codes an answer may carry, and the document cannot
// drift from camd's map of codes to statuses.
func TestErrorCodesDocumented(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(apidoc.Document())
	if err != nil {
		t.Fatal(err)
	}
	const errorRef, codeRef = "#/components/schemas/Error", "#/components/schemas/ErrorCode"
	var documented []string
	if ref := doc.Components.Schemas["ErrorCode"]; ref == nil || ref.Value == nil {
		t.Fatal("no ErrorCode schema")
	} else {
		for _, v := range ref.Value.Enum {
			s, _ := v.(string)
			documented = append(documented, s)
		}
	}
	var codes []string
	for _, c := range apierr.Codes() {
		codes = append(codes, string(c))
	}
	slices.Sort(documented)
	slices.Sort(codes)
	if !slices.Equal(documented, codes) {
		t.Errorf("ErrorCode enum %v, want apierr.Codes() %v", documented, codes)
	}
	if len(slices.Compact(slices.Clone(documented))) != len(documented) {
		t.Errorf("ErrorCode enum lists a code twice: %v", documented)
	}
	errSchema := doc.Components.Schemas["Error"].Value
	if !slices.Contains(errSchema.Required, "code") || errSchema.Properties["code"] == nil || errSchema.Properties["code"].Ref != codeRef {
		t.Errorf("the Error schema does not require a code of ErrorCode")
	}

	checked := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				st, err := strconv.Atoi(status)
				if err != nil || st < 400 {
					continue
				}
				where := fmt.Sprintf("%s %s %s", method, path, status)
				res := ref.Value
				if st == http.StatusRequestHeaderFieldsTooLarge {
					// net/http's own, before any route: never JSON.
					if res.Content.Get("application/json") != nil || res.Content.Get("text/plain") == nil {
						t.Errorf("%s: want net/http's text/plain answer only", where)
					}
					continue
				}
				media := res.Content.Get("application/json")
				if media == nil {
					if res.Content.Get("text/html") == nil {
						t.Errorf("%s: neither a JSON error nor the admin page", where)
					}
					continue
				}
				checked++
				named := responseCodes(media.Schema, errorRef)
				if named == nil {
					t.Errorf("%s: the schema is not the Error schema narrowed to the codes it answers (allOf: [Error, {properties: {code: {enum: [...]}}}])", where)
					continue
				}
				for _, c := range named {
					switch {
					case !slices.Contains(codes, c):
						t.Errorf("%s: code %q is not in apierr", where, c)
					case apierr.Code(c).Status() != st:
						t.Errorf("%s: code %q is answered with %d", where, c, apierr.Code(c).Status())
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("checked only %d JSON error responses", checked)
	}
}

// responseCodes returns the codes a response schema narrows Error to, or nil
// when it is not Error narrowed with allOf.
func responseCodes(s *openapi3.SchemaRef, errorRef string) []string {
	if s == nil || s.Value == nil || len(s.Value.AllOf) != 2 || s.Value.AllOf[0].Ref != errorRef {
		return nil
	}
	code := s.Value.AllOf[1].Value.Properties["code"]
	if code == nil || code.Value == nil || len(code.Value.Enum) == 0 {
		return nil
	}
	var out []string
	for _, v := range code.Value.Enum {
		c, _ := v.(string)
		out = append(out, c)
	}
	return out
}
