// Package health mounts GET /healthz, an unauthenticated liveness check for
// supervisors and container engines.
package health

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"camd/app"
	"camd/platform/clock"
)

func init() { app.Register(Info()) }

// Info describes the module for a registry; tests register it in their own.
func Info() app.ModuleInfo {
	return app.ModuleInfo{ID: "health", New: func() app.Module { return new(Module) }}
}

// Interface guard.
var _ app.Module = (*Module)(nil)

// Module is the health endpoint.
type Module struct {
	version string
	started time.Time
	clock   clock.Clock
}

// Provision mounts GET /healthz.
func (m *Module) Provision(d app.Deps) error {
	m.version, m.started, m.clock = d.Version, d.Started, d.Clock
	d.Echo.GET("/healthz", m.health)
	return nil
}

// status is deliberately small: anyone can read it, so it says nothing about
// the secret, the password or the clients.
type status struct {
	Status        string `json:"status"`
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}

func (m *Module) health(c echo.Context) error {
	return c.JSON(http.StatusOK, status{
		Status:        "ok",
		Version:       m.version,
		UptimeSeconds: int64(m.clock.Now().Sub(m.started).Seconds()),
	})
}
