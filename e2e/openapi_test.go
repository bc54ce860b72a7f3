package e2e

import (
	"net/http"
	"testing"

	"camd/modules/apidoc"
)

// TestOpenAPIServed: the binary's standard modules include the document, and
// it is the one in the source tree.
func TestOpenAPIServed(t *testing.T) {
	p := start(t, t.TempDir())
	r := p.do("GET", "/openapi.yaml", "")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("got %d %q, want 200 application/yaml", r.Status, r.Header.Get("Content-Type"))
	}
	if r.Body != string(apidoc.Document()) {
		t.Error("the served document differs from modules/apidoc/openapi.yaml")
	}
}
