// Package admin mounts /admin behind HTTP Basic auth for the owner.
package admin

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/app"
	"camd/auth"
	"camd/jsonbody"
	"camd/platform/clock"
)

func init() { app.Register(Info()) }

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{ID: "admin", New: func() app.Module { return new(Module) }}
}

// Interface guard.
var _ app.Module = (*Module)(nil)

// Realm is the Basic auth realm browsers show in their login dialog.
const Realm = "Backyard cam admin"

// Module is the owner's admin area.
type Module struct {
	auth  *auth.Service
	clock clock.Clock
	log   *slog.Logger
	// fingerprint returns the served HTTPS certificate's, empty without TLS.
	fingerprint func() string

	// For the HTML page.
	pages   *pages
	page    echo.HandlerFunc // showPage behind the CSP and CSRF middleware
	reports func() []app.Report
	version string
	started time.Time // monotonic, for the uptime
}

// Provision mounts /admin (the page, its forms and the JSON API) behind Basic
// auth, and warns when the password would cross the network in the clear.
func (m *Module) Provision(d app.Deps) error {
	m.auth, m.clock, m.log = d.Auth, d.Clock, d.Log
	m.fingerprint, m.reports, m.version, m.started = d.Host.TLSFingerprint, d.Host.Reports, d.Host.Version, time.Now()
	pages, err := newPages(m.fingerprint() != "")
	if err != nil {
		return err
	}
	m.pages = pages
	m.page = pages.secure(pages.csrf(m.showPage))
	if m.fingerprint() == "" && !isLoopback(d.Host.Listen) {
		d.Log.Warn("/admin uses HTTP Basic auth over plain HTTP on a non-loopback address: the owner password crosses the network in the clear",
			slog.String("listen", d.Host.Listen))
	}
	basic := d.Auth.Basic(Realm)
	// Per route rather than g.Use, so a wrong method stays 405 (see modules/ack).
	g := d.Echo.Group("/admin")
	g.GET("", m.index, basic)
	d.Echo.GET(AssetPath, m.css)
	// The page's forms. Security headers first, so every answer carries
	// them; then the body cap and the CSRF check, both before the costly
	// password check, so a forged post is refused cheaply.
	form := []echo.MiddlewareFunc{pages.secure, middleware.BodyLimit(FormLimit), requireForm, pages.csrf, basic}
	g.POST("/ui/clients", m.formCreateClient, form...)
	g.POST("/ui/clients/:name/revoke", m.formRevokeClient, form...)
	g.POST("/ui/rotate-secret", m.formRotateSecret, form...)
	g.POST("/ui/password", m.formChangePassword, form...)
	// The JSON API. State changes take only application/json bodies, so a
	// cross-site form cannot forge them with cached Basic credentials.
	change := []echo.MiddlewareFunc{basic, jsonbody.RequireJSON, middleware.BodyLimit(BodyLimit)}
	g.GET("/status", m.status, basic)
	g.GET("/clients", m.listClients, basic)
	// A client token made while the clock is untrusted would carry a wrong
	// iat and exp (from 1970, say), so creation waits like login does.
	g.POST("/clients", m.createClient, append(change, d.Auth.RequireTrustedClock())...)
	g.DELETE("/clients/:name", m.deleteClient, basic)
	g.POST("/rotate-secret", m.rotateSecret, change...)
	g.POST("/password", m.changePassword, change...)
	return nil
}

func (m *Module) hello(c echo.Context) error {
	return c.String(http.StatusOK, "hi "+auth.Owner)
}

// isLoopback reports whether a listen address only accepts connections from
// this machine. An empty host (":8080") listens on every interface.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
