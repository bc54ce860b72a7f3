// Package auth mounts POST /api/login, where the owner trades the password
// for a short-lived bearer token. The check itself, with its lockout, is the
// auth service's (camd/auth).
package auth

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/app"
	"camd/auth"
	"camd/jsonbody"
)

func init() { app.Register(Info()) }

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{ID: "auth", New: func() app.Module { return new(Module) }}
}

// Interface guard.
var _ app.Module = (*Module)(nil)

// BodyLimit caps a login body: user and password fit in far less.
const BodyLimit = "4KiB"

// Module is the login endpoint.
type Module struct {
	auth *auth.Service
}

// Provision mounts POST /api/login.
func (m *Module) Provision(d app.Deps) error {
	m.auth = d.Auth
	// No login while the clock is untrusted: the token's iat and exp would
	// be wrong, and the password check would burn CPU for nothing.
	d.Echo.POST("/api/login", m.login, d.Auth.RequireTrustedClock(), middleware.BodyLimit(BodyLimit))
	return nil
}

// loginResponse follows RFC 6749 section 5.1, which phone OAuth libraries
// already parse.
type loginResponse struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
}

func (m *Module) login(c echo.Context) error {
	body, err := jsonbody.Read(c)
	if err != nil {
		return err
	}
	user, err := body.String("user")
	if err != nil {
		return err
	}
	pass, err := body.String("pass")
	if err != nil {
		return err
	}
	g, err := m.auth.LoginRequest(c, user, pass)
	if err != nil {
		return err
	}
	// A token must not be kept by any cache between the cam and the app
	// (RFC 6749 section 5.1).
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, loginResponse{
		Token:     g.Token,
		TokenType: "Bearer",
		ExpiresIn: int64(g.ExpiresIn.Seconds()),
	})
}
