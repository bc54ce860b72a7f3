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
	started time.Time // with a monotonic reading
	clock   clock.Clock
	// fingerprint returns the served HTTPS certificate's, empty without TLS.
	fingerprint func() string
}

// Provision mounts GET /healthz.
func (m *Module) Provision(d app.Deps) error {
	m.version, m.clock = d.Host.Version, d.Clock
	m.fingerprint = d.Host.TLSFingerprint
	m.started = time.Now() // uptime is measured on the monotonic clock, not camd's time
	d.Echo.GET("/healthz", m.health)
	return nil
}

// status is deliberately small: anyone can read it, so it says nothing about
// the secret, the password or the clients.
type status struct {
	Status        string      `json:"status"`
	Version       string      `json:"version"`
	UptimeSeconds int64       `json:"uptime_seconds"`
	Clock         clockStatus `json:"clock"`
	// TLSFingerprint is public anyway (any client sees the certificate);
	// showing it lets a phone app confirm what it pinned.
	TLSFingerprint *string `json:"tls_fingerprint"`
}

// clockStatus is clock.Status as JSON; times are RFC 3339, absent ones null.
type clockStatus struct {
	Mode     string     `json:"mode"`
	Trusted  bool       `json:"trusted"`
	Synced   bool       `json:"synced"`
	LastSync *time.Time `json:"last_sync"`
	OffsetMS float64    `json:"offset_ms"`
	Server   string     `json:"server"`
	NextSync *time.Time `json:"next_sync"`
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (m *Module) health(c echo.Context) error {
	st := m.clock.Status()
	var fp *string // null without TLS
	if s := m.fingerprint(); s != "" {
		fp = &s
	}
	return c.JSON(http.StatusOK, status{
		Status:        "ok",
		Version:       m.version,
		UptimeSeconds: int64(time.Since(m.started).Seconds()),
		Clock: clockStatus{
			Mode:     st.Mode,
			Trusted:  st.Trusted,
			Synced:   st.Synced,
			LastSync: timeOrNull(st.LastSync),
			OffsetMS: float64(st.Offset) / float64(time.Millisecond),
			Server:   st.Server,
			NextSync: timeOrNull(st.NextSync),
		},
		TLSFingerprint: fp,
	})
}
