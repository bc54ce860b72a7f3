// Package app is camd's host: it opens the platform (data directory, clock,
// TLS) and the auth service, builds Echo with the one JSON error handler and
// the shared middleware, hands every registered module its dependencies,
// and runs the HTTP server and the modules' background work until it is
// told to stop.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"camd/auth"
	"camd/config"
	"camd/internal/profiling"
	"camd/platform/accesslog"
	"camd/platform/clock"
	"camd/platform/connlimit"
	"camd/platform/datadir"
	"camd/platform/password"
	"camd/platform/sdnotify"
)

// Deps is what the host hands each module, and all it gets: no
// package-level state, no other module's internals.
type Deps struct {
	Log   *slog.Logger // already scoped with the module's ID
	Echo  *echo.Echo
	Clock clock.Clock
	// Auth is the one authentication service: its Bearer and Basic
	// middleware guard a module's routes, auth.PrincipalFrom says who a
	// request is from.
	Auth *auth.Service
	// Config holds the values of the module's own flags (ModuleInfo.Flags).
	Config config.Values
	// DataDir opens the module's own directory under the data directory,
	// named after its ID, creating it on first use: a module that keeps
	// nothing never calls it, and gets none.
	DataDir func() (datadir.Dir, error)
	Host    Host
}

// Host is what a module may know about the server it runs in.
type Host struct {
	Version string // reported by /healthz and the admin page
	Listen  string // the configured listen address
	// TLSFingerprint returns the SHA-256 fingerprint of the HTTPS
	// certificate being served, empty when TLS is off. It changes when the
	// --tls auto certificate is re-signed for a trusted time.
	TLSFingerprint func() string
	// Reports returns the reports of every module that is a Reporter, in
	// registry order, for the owner's admin page.
	Reports func() []Report
}

// Reporter is a module with something to show the owner on the admin page,
// such as the last ack.
type Reporter interface{ Report() Report }

// Report is one section of the admin page.
type Report struct {
	ID    string    // the section's HTML id, such as "last-ack"
	Title string    // its heading, such as "Last ack"
	Text  string    // one sentence, such as "Ack #7 by owner"
	At    time.Time // when it happened, shown after Text; zero for none
}

// Options are the host's inputs besides Config.
type Options struct {
	// Registry supplies the modules; nil means DefaultRegistry.
	Registry *Registry
	// Log receives every log line; nil discards them.
	Log *slog.Logger
	// AccessLog receives the line per request; nil sends it to Log.
	AccessLog *accesslog.Logger
	// Clock tells the time; nil means the NTP-disciplined clock that
	// cfg describes.
	Clock clock.Clock
	// BuildTime is the RFC 3339 build stamp (may be empty); no reading
	// before it is trusted.
	BuildTime string
	// Stderr is where the initial owner password is printed, once.
	Stderr io.Writer
	// Version is reported by /healthz and the logs.
	Version string
	// PasswordParams overrides the argon2id cost; nil means the defaults.
	// Tests lower it to keep the suite fast.
	PasswordParams *password.Params
	// Timeouts overrides the server's timeouts; zero fields keep
	// DefaultTimeouts'. Tests shorten them rather than wait them out.
	Timeouts Timeouts
}

// Timeouts are the HTTP server's limits on slow clients.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
	// Shutdown bounds how long in-flight requests get after SIGTERM;
	// then their connections are closed.
	Shutdown time.Duration
}

// DefaultTimeouts are long enough for a slow phone link and a queued login,
// short enough that a slow or stalled client cannot hold a cam's few
// sockets.
var DefaultTimeouts = Timeouts{
	ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second,
	Idle: 60 * time.Second, Shutdown: 10 * time.Second,
}

// orDefault fills t's zero fields from DefaultTimeouts.
func (t Timeouts) orDefault() Timeouts {
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	d := DefaultTimeouts
	return Timeouts{pick(t.ReadHeader, d.ReadHeader), pick(t.Read, d.Read), pick(t.Write, d.Write), pick(t.Idle, d.Idle), pick(t.Shutdown, d.Shutdown)}
}

// maxHeaderBytes caps a request's headers: a bearer token and a browser's
// usual headers fit in a quarter of it.
const maxHeaderBytes = 8 << 10

// App is a provisioned camd, ready to serve.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	echo     *echo.Echo
	clock    clock.Clock
	server   *http.Server
	conns    *connlimit.Limiter // caps the connections Serve holds
	shutdown time.Duration
	runners  []Runner // the clock, the auth service and modules with work of their own
	modules  []provisioned
	close    sync.Once
	handling atomic.Int64 // requests being handled, which stop waits for
}

// New opens the platform and provisions every module. It fails, naming the
// path and the OS error, when the data directory or the secret is unusable:
// camd never runs with a secret that lives only in memory.
func New(cfg config.Config, opt Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	opt = opt.withDefaults()
	dir, err := datadir.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	clk, err := openClock(cfg, opt, dir)
	if err != nil {
		return nil, err
	}
	svc, err := auth.Open(auth.Config{
		Dir: dir, SecretFile: cfg.SecretFile, TokenTTL: cfg.TokenTTL, Clock: clk, Log: opt.Log.With("module", "auth"),
		Scopes: opt.Registry.Scopes(), LockoutIPv6Prefix: cfg.LockoutPrefix(), PasswordParams: opt.PasswordParams,
		InitialPassword: auth.ShowOn(opt.Stderr),
	})
	if err != nil {
		return nil, err
	}
	tls, err := openTLS(cfg, dir, clk, opt.Log)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: opt.Log, echo: newEcho(opt.Log, opt.AccessLog, cfg.Proxies()), clock: clk, runners: []Runner{svc}}
	if r, ok := clk.(Runner); ok {
		a.runners = append(a.runners, r)
	}
	if tls.auto != nil {
		a.runners = append(a.runners, tls)
	}
	host := Host{Version: opt.Version, Listen: cfg.Listen, TLSFingerprint: tls.fingerprint, Reports: a.reports}
	if err := a.provision(opt.Registry, dir, cfg.Modules, Deps{Echo: a.echo, Clock: clk, Auth: svc, Host: host}); err != nil {
		return nil, err
	}
	t := opt.Timeouts.orDefault()
	a.shutdown = t.Shutdown
	a.conns = newConnLimiter(cfg, tls.config != nil, svc.ClientKey, opt.Log)
	if profiling.Off(profiling.Timeouts) {
		t.Read, t.Write = 0, 0
	}
	a.server = &http.Server{
		ConnState:         a.conns.ConnState,
		Handler:           a.counted(a.echo),
		TLSConfig:         tls.config,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
		Protocols:         http1Only(),
		ErrorLog:          slog.NewLogLogger(opt.Log.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// http1Only is HTTP/1.1, over TLS too: net/http would otherwise offer
// HTTP/2 to any TLS client. camd's clients (the phone app, boards, a browser
// on the admin page) need nothing more; the connection caps and timeouts
// (platform/connlimit) count and bound connections, where one HTTP/2
// connection carries up to 250 requests at once; and without it
// scripts/dist.sh can leave net/http's HTTP/2 out of the binary (the
// nethttpomithttp2 build tag), 0.3 MiB of armv7.
func http1Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return p
}

func (opt Options) withDefaults() Options {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.AccessLog == nil {
		opt.AccessLog = accesslog.FromHandler(opt.Log.Handler())
	}
	if opt.Registry == nil {
		opt.Registry = DefaultRegistry
	}
	if opt.Stderr == nil {
		opt.Stderr = io.Discard
	}
	return opt
}

// Handler returns the HTTP handler, for in-process tests and benchmarks.
func (a *App) Handler() http.Handler { return a.echo }

// Routes returns "METHOD PATH" for every route, sorted, so a test can notice
// a module that silently stopped registering.
func (a *App) Routes() []string {
	var out []string
	for _, r := range a.echo.Routes() {
		// Echo's internal catch-alls for 404/405 are not routes anyone mounted.
		if r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ListenAndServe listens on the configured address and serves until ctx ends.
func (a *App) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to Timeouts.Shutdown) and
// returns nil. Past Timeouts.Shutdown it closes the connections left (see
// closeLeft) and returns an error.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// Background work runs for as long as the server does, and stops after
	// it, so that what it keeps (the clock's last-known-good time, the
	// clients' last use) is written at shutdown; then modules clean up.
	runCtx, stopRunners := context.WithCancel(context.Background())
	var background sync.WaitGroup
	for _, r := range a.runners {
		background.Go(func() { r.Run(runCtx) })
	}
	defer func() { stopRunners(); background.Wait(); a.cleanup() }()

	tls := a.server.TLSConfig != nil
	a.log.Info("listening", "addr", ln.Addr().String(), "tls", tls)
	// Beneath TLS, so a refused connection costs no handshake.
	if profiling.Off(profiling.ConnCaps) {
		a.server.ConnState = nil
	} else {
		ln = a.conns.Listener(ln)
	}
	errc := make(chan error, 1)
	// The socket is listening: connections queue until Serve accepts
	// them, so a supervisor told "ready" now loses none.
	// STATUS names the address, which a test that listens on port 0 needs.
	if _, err := sdnotify.Notify(sdnotify.Ready + "\nSTATUS=listening on " + ln.Addr().String()); err != nil {
		a.log.Warn("could not signal readiness", "err", err)
	}
	go func() {
		if tls {
			errc <- a.server.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		errc <- a.server.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	_, _ = sdnotify.Notify(sdnotify.Stopping) // best effort: we stop either way
	a.log.Info("shutting down", "grace", a.shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.shutdown)
	defer cancel()
	if err := a.server.Shutdown(sctx); err != nil {
		a.closeLeft()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// counted counts the requests h is handling, for closeLeft.
func (a *App) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.handling.Add(1)
		defer a.handling.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// closeGrace is how long closeLeft waits for handlers whose contexts it
// ended: a handler that heeds its context returns within it, even one
// finishing a password hash on a slow cam.
const closeGrace = time.Second

// closeLeft closes the connections still open once the shutdown grace is
// over, which ends their requests' contexts, and waits up to closeGrace for
// their handlers to return, so that modules do not clean up under them.
// http.Server.Close does not wait for handlers; polling the count does,
// for the few milliseconds a stop takes.
func (a *App) closeLeft() {
	a.server.Close()
	deadline := time.Now().Add(closeGrace)
	for a.handling.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := a.handling.Load(); n > 0 {
		a.log.Error("requests still being handled after their connections were closed; cleaning up regardless", "requests", n)
	}
}
