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

	"github.com/labstack/echo/v4"

	"camd/app"
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
type Module struct{}

// Provision mounts GET /openapi.yaml, without authentication: the document
// describes the API, not anything on this cam.
func (*Module) Provision(d app.Deps) error {
	d.Echo.GET(Path, serve)
	return nil
}

// serve copies the document for each request: it is fetched rarely, and a
// copy kept on the heap would cost every cam the memory for nothing.
func serve(c echo.Context) error {
	return c.Blob(http.StatusOK, ContentType, []byte(document))
}
