// Package ack mounts the bearer-protected /api/ack: the phone POSTs an ack
// when the owner taps "seen" on a motion notification, and GETs the last one.
package ack

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/app"
	"camd/jsonbody"
	"camd/platform/ackstore"
	"camd/platform/clock"
	"camd/token"
)

func init() { app.Register(Info()) }

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{ID: "ack", New: func() app.Module { return new(Module) }}
}

// Interface guard.
var _ app.Module = (*Module)(nil)

// Scopes a client token needs: Scope to post acks (and read them),
// ReadScope only to read the last one, as a status display would.
const (
	Scope     = "ack"
	ReadScope = "ack:read"
)

// BodyLimit caps an ack body: {"count": N} needs a few dozen bytes.
const BodyLimit = "4KiB"

// Module is the ack endpoint.
type Module struct {
	acks  *ackstore.Store
	clock clock.Clock
}

// Provision mounts POST and GET /api/ack behind the bearer token check.
func (m *Module) Provision(d app.Deps) error {
	m.acks, m.clock = d.Acks, d.Clock
	bearer, err := d.Tokens.Bearer()
	if err != nil {
		return err
	}
	// The middleware goes on each route rather than g.Use: Group.Use adds a
	// catch-all route that would turn a wrong method into 404 instead of 405.
	g := d.Echo.Group("/api/ack")
	g.POST("", m.post, bearer, token.RequireScope(Scope), middleware.BodyLimit(BodyLimit))
	g.GET("", m.get, bearer, token.RequireScope(Scope, ReadScope))
	return nil
}

// ackResponse is one recorded ack as clients see it.
type ackResponse struct {
	OK      bool   `json:"ok,omitempty"`
	User    string `json:"user"`
	Count   uint64 `json:"count"`
	AckedAt string `json:"acked_at"`
}

func response(a ackstore.Ack) ackResponse {
	return ackResponse{User: a.User, Count: a.Count, AckedAt: a.AckedAt.UTC().Format(time.RFC3339Nano)}
}

func (m *Module) post(c echo.Context) error {
	claims, ok := token.FromContext(c)
	if !ok {
		// Unreachable behind the bearer middleware; refuse rather than
		// record an ack for nobody.
		return echo.ErrUnauthorized
	}
	body, err := jsonbody.Read(c)
	if err != nil {
		return err
	}
	count, err := body.Uint("count")
	if err != nil {
		return err
	}
	a := ackstore.Ack{User: claims.Subject, Count: count, AckedAt: m.clock.Now().UTC()}
	// Durable before the 200: a client told "ok" never loses the ack.
	if err := m.acks.Record(a); err != nil {
		return err
	}
	resp := response(a)
	resp.OK = true
	return c.JSON(http.StatusOK, resp)
}

func (m *Module) get(c echo.Context) error {
	a, ok := m.acks.Last()
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no ack recorded yet")
	}
	return c.JSON(http.StatusOK, response(a))
}
