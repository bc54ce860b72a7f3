// Package apidoc serves camd's OpenAPI document at GET /openapi.yaml, so app
// developers can generate clients from what the cam they talk to runs.
//
// openapi.yaml in this directory is the one copy of the document: it is
// embedded here, and the tests validate camd's traffic against the same
// bytes (camd/internal/apitest).
package apidoc

import (
	_ "embed"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"camd/app"
	"camd/auth"
)

func init() { app.Register(Info()) }

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{ID: "apidoc", New: func() app.Module { return new(Module) }}
}

// Interface guard.
var _ app.Module = (*Module)(nil)

// Path is where the document is served.
const Path = "/openapi.yaml"

// ContentType is application/yaml, registered for YAML by RFC 9512, rather
// than application/vnd.oai.openapi: generic HTTP clients, browsers and
// code generators all recognise it, and the document says it is OpenAPI.
const ContentType = "application/yaml"

// document is a string, not a []byte, so that it lands in the binary's
// read-only data: the armv7 binary's size moves in 64 KiB steps, one per
// segment that outgrows its alignment, and the writable segment has the
// least room left.
//
//go:embed openapi.yaml
var document string

// Document returns the OpenAPI document.
func Document() []byte { return []byte(document) }

// Module serves the document.
type Module struct {
	doc string
}

// Provision mounts GET /openapi.yaml, without authentication: the document
// describes the API, not anything on this cam.
func (m *Module) Provision(d app.Deps) error {
	m.doc = Render(d.Auth.Scopes())
	d.Echo.GET(Path, m.serve)
	return nil
}

// serve copies the document for each request: it is fetched rarely, and a
// copy kept on the heap would cost every cam the memory for nothing. (For
// the standard set, Render returns the embedded string itself.)
func (m *Module) serve(c echo.Context) error {
	return c.Blob(http.StatusOK, ContentType, []byte(m.doc))
}

// Render returns the document with the Scope schema's enum listing scopes,
// the scopes the modules of this build declare.
func Render(scopes []auth.Scope) string {
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = strconv.Quote(sc.Name) // a JSON string is a YAML flow scalar
	}
	start, end, ok := scopeEnum(document)
	if !ok {
		panic("apidoc: openapi.yaml has no Scope schema enum") // TestRender holds it there
	}
	return document[:start] + "      enum: [" + strings.Join(names, ", ") + "]" + document[end:]
}

// scopeEnum finds the enum line of the Scope schema: the first line starting
// "      enum: " after "    Scope:".
func scopeEnum(doc string) (start, end int, ok bool) {
	const schema, enum = "\n    Scope:\n", "\n      enum: "
	i := strings.Index(doc, schema)
	if i < 0 {
		return 0, 0, false
	}
	j := strings.Index(doc[i:], enum)
	if j < 0 {
		return 0, 0, false
	}
	start = i + j + 1
	n := strings.IndexByte(doc[start:], '\n')
	if n < 0 {
		return 0, 0, false
	}
	return start, start + n, true
}
