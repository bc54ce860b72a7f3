// Package ack mounts the bearer-protected /api/ack: the phone POSTs an ack
// when the owner taps "seen" on a motion notification, and GETs the last one.
// The last ack is kept in the module's own directory (ack/ack.json).
package ack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/apierr"
	"camd/app"
	"camd/auth"
	"camd/config"
	"camd/jsonbody"
	"camd/modules/ack/ackstore"
	"camd/platform/clock"
)

func init() { app.Register(Info()) }

// Scopes a client token needs: Scope to post acks (and read them),
// ReadScope only to read the last one, as a status display would.
const (
	Scope     = "ack"
	ReadScope = "ack:read"
)

// GroupCommitFlag names the module's one setting.
const GroupCommitFlag = "ack-group-commit"

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{
		ID:  "ack",
		New: func() app.Module { return new(Module) },
		Scopes: []auth.Scope{
			{Name: Scope, Description: "post acks and read the last one", Default: true},
			{Name: ReadScope, Description: "read the last ack only, as a status display would"},
		},
		Flags: []config.Flag{{
			Name: GroupCommitFlag, Env: "CAMD_ACK_GROUP_COMMIT", Default: "true", Bool: true,
			Usage: "let concurrent acks share one write and fsync (each is still on disk before its 200); off costs one fsync per ack",
		}},
		// Before modules had directories, ack.json was at the top.
		Files: []string{ackstore.FileName},
	}
}

// Interface guards.
var (
	_ app.Module   = (*Module)(nil)
	_ app.Reporter = (*Module)(nil)
)

// BodyLimit caps an ack body: {"count": N} needs a few dozen bytes.
const BodyLimit = "4KiB"

// Module is the ack endpoint.
type Module struct {
	acks  *ackstore.Store
	clock clock.Clock
	// last is GET's answer, encoded once per ack rather than per read:
	// reads far outnumber acks, and encoding was a fifth of a read's
	// allocations (docs/performance.md).
	last atomic.Pointer[encodedAck]
}

// encodedAck is an ack and its GET answer, as c.JSON would write it.
type encodedAck struct {
	ack  ackstore.Ack
	body []byte
}

// Provision opens the module's ack store and mounts POST and GET /api/ack
// behind the bearer token check.
func (m *Module) Provision(d app.Deps) error {
	group, err := d.Config.Bool(GroupCommitFlag)
	if err != nil {
		return err
	}
	dir, err := d.DataDir()
	if err != nil {
		return err
	}
	if m.acks, err = ackstore.Open(dir, d.Log, d.Clock.Now, ackstore.Options{GroupCommit: group}); err != nil {
		return fmt.Errorf("ack store: %w", err)
	}
	m.clock = d.Clock
	// The middleware goes on each route rather than g.Use: Group.Use adds a
	// catch-all route that would turn a wrong method into 404 instead of 405.
	g := d.Echo.Group("/api/ack")
	g.POST("", m.post, d.Auth.Bearer(Scope), middleware.BodyLimit(BodyLimit))
	g.GET("", m.get, d.Auth.Bearer(Scope, ReadScope))
	return nil
}

// Report shows the last ack on the admin page.
func (m *Module) Report() app.Report {
	r := app.Report{ID: "last-ack", Title: "Last ack", Text: "No ack yet"}
	if a, ok := m.acks.Last(); ok {
		r.Text, r.At = fmt.Sprintf("Ack #%d by %s", a.Count, a.User), a.AckedAt
	}
	return r
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
	p, ok := auth.PrincipalFrom(c)
	if !ok {
		// Unreachable behind the bearer middleware; refuse rather than
		// record an ack for nobody.
		return apierr.New(apierr.MissingToken, "missing bearer token")
	}
	body, err := jsonbody.Read(c)
	if err != nil {
		return err
	}
	count, err := body.Uint("count")
	if err != nil {
		return err
	}
	a := ackstore.Ack{User: p.Subject, Count: count, AckedAt: m.clock.Now().UTC()}
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
		return apierr.New(apierr.NotFound, "no ack recorded yet")
	}
	e := m.last.Load()
	if e == nil || e.ack != a {
		body, err := json.Marshal(response(a))
		if err != nil {
			return fmt.Errorf("encode ack: %w", err)
		}
		e = &encodedAck{ack: a, body: append(body, '\n')} // json.Encoder's newline, as c.JSON has it
		m.last.Store(e)
	}
	return c.JSONBlob(http.StatusOK, e.body)
}
