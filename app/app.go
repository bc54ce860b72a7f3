// Package app is camd's host: it opens the platform (data directory, secret,
// clock, stores), builds Echo with the one JSON error handler and the shared
// middleware, hands every registered module its dependencies, and runs the
// HTTP server until it is told to stop.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"camd/config"
	"camd/lockout"
	"camd/platform/ackstore"
	"camd/platform/clients"
	"camd/platform/clock"
	"camd/platform/connlimit"
	"camd/platform/datadir"
	"camd/platform/ntpclock"
	"camd/platform/password"
	"camd/platform/sdnotify"
	"camd/platform/secret"
	"camd/platform/tlscert"
	"camd/token"
)

// Deps is what the host hands each module. Modules get nothing else: no
// package-level state, no other module's internals.
type Deps struct {
	Config config.Config
	Log    *slog.Logger // already scoped with the module's ID
	Echo   *echo.Echo
	Clock  clock.Clock
	Tokens *token.Authority
	Owner  *password.Store
	// Passwords checks the owner password with brute-force protection;
	// every password check of a request goes through it.
	Passwords *PasswordGate
	Acks      *ackstore.Store
	Clients   *clients.Store
	// RotateSecret makes a new signing secret and switches to it; it
	// fails with ErrExternalSecret when the secret comes from --secret-file.
	RotateSecret func() error
	// TLSFingerprint returns the SHA-256 fingerprint of the HTTPS
	// certificate being served, empty when TLS is off. It changes when the
	// --tls auto certificate is re-signed for a trusted time.
	TLSFingerprint func() string
	Version        string
	// Secret describes the current signing secret, never revealing it.
	Secret func() SecretInfo
}

// SecretInfo describes the signing secret for the owner's admin page.
type SecretInfo struct {
	Fingerprint string    // secret.Fingerprint of the key
	Since       time.Time // when it was made (its file's mtime); zero if unknown
	External    bool      // it comes from --secret-file and camd cannot rotate it
}

// secretState is the SecretInfo that rotation updates.
type secretState struct {
	mu   sync.Mutex
	info SecretInfo
}

func (s *secretState) get() SecretInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

func (s *secretState) set(key []byte, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.Fingerprint, s.info.Since = secret.Fingerprint(key), since
}

// ErrExternalSecret refuses rotation of a secret provided from outside.
var ErrExternalSecret = errors.New("the signing secret is provided from outside (--secret-file); rotate it there")

// Options are the host's inputs besides Config.
type Options struct {
	// Registry supplies the modules; nil means DefaultRegistry.
	Registry *Registry
	// Log receives every log line; nil discards them.
	Log *slog.Logger
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
}

// Server timeouts: long enough for a slow phone link and a queued login, short
// enough that a slow or stalled client cannot hold a cam's few sockets.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 8 << 10
	// shutdownTimeout bounds how long in-flight requests get after SIGTERM.
	shutdownTimeout = 10 * time.Second
)

// App is a provisioned camd, ready to serve.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	echo    *echo.Echo
	clock   clock.Clock
	clients *clients.Store
	server  *http.Server
	conns   *connlimit.Limiter // caps the connections Serve holds

	// autoCert is the --tls auto certificate, re-signed once the clock is
	// trusted; nil otherwise.
	autoCert *tlscert.Auto
}

// runner is a clock with work of its own: syncing, persisting its floor.
type runner interface {
	Run(ctx context.Context)
}

// New opens the platform and provisions every module. It fails, naming the
// path and the OS error, when the data directory or the secret is unusable:
// camd never runs with a secret that lives only in memory.
func New(cfg config.Config, opt Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := opt.Registry
	if reg == nil {
		reg = DefaultRegistry
	}
	stderr := opt.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	params := password.DefaultParams()
	if opt.PasswordParams != nil {
		params = *opt.PasswordParams
	}

	dir, err := datadir.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	clk := opt.Clock
	if clk == nil {
		if clk, err = ntpclock.New(ntpclock.Config{
			Mode:           cfg.ClockMode,
			Servers:        cfg.Servers(),
			Interval:       cfg.NTPInterval,
			SetSystemClock: cfg.SetSystemClock,
			Floor:          clock.BuildFloor(opt.BuildTime),
			MaxAhead:       cfg.ClockMaxAhead,
			Dir:            dir,
			Log:            log.With("module", "clock"),
		}); err != nil {
			return nil, err
		}
	}
	var key []byte
	secretPath := dir.Join(secret.FileName)
	if cfg.SecretFile != "" {
		secretPath = cfg.SecretFile
		key, err = secret.LoadExternal(cfg.SecretFile, log)
	} else {
		key, err = secret.LoadOrCreate(dir, log, clk.Now)
	}
	if err != nil {
		return nil, err
	}
	secretInfo := &secretState{info: SecretInfo{External: cfg.SecretFile != ""}}
	var since time.Time
	if fi, err := os.Stat(secretPath); err == nil {
		since = fi.ModTime()
	}
	secretInfo.set(key, since)
	tokens, err := token.NewAuthority(key, cfg.TokenTTL, clk)
	if err != nil {
		return nil, err
	}
	// Password hashes run one fewer at a time than there are cores (at
	// least one, at most two): each holds params.Memory, and a core stays
	// free for authenticated requests while logins queue. The benchmark
	// showed reads beside 4 looping logins at 8x their p99 with both cores
	// hashing, under 2x with one.
	owner := password.NewStore(dir, params, max(1, min(2, runtime.GOMAXPROCS(0)-1)))
	// A password file damaged while camd was stopped is reported now,
	// naming it, never as a 500 on the first login (see CheckFiles).
	if err := password.CheckFiles(dir, log, clk.Now); err != nil {
		return nil, err
	}
	// Printed, never logged: logs are kept and shipped, stderr at first
	// start is read by the person installing the cam.
	created, err := owner.EnsureInitial(func(pw string) error {
		_, err := fmt.Fprintf(stderr, "initial owner password: %s\n", pw)
		return err
	})
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the initial owner password and printed it once on stderr; change it with camd passwd", "path", owner.Path())
	}
	acks, err := ackstore.Open(dir, log, clk.Now, ackstore.Options{GroupCommit: cfg.AckGroupCommit})
	if err != nil {
		return nil, err
	}
	if err := clients.CheckFile(dir, log, clk.Now); err != nil {
		return nil, err
	}
	cls, err := clients.Open(dir)
	if err != nil {
		return nil, err
	}
	tokens.SetValidator(func(c *token.Claims) error {
		if name, ok := c.Client(); ok {
			if !cls.Valid(name, c.ID) {
				return errors.New("client revoked")
			}
			return nil
		}
		if c.Subject != token.OwnerSubject {
			return errors.New("unknown subject")
		}
		ch, err := owner.Changed()
		if err != nil {
			return err
		}
		if c.PasswordVersion != ch.Version {
			return errors.New("issued before the last password change")
		}
		return nil
	})
	tokens.SetOnUse(func(ec echo.Context, c *token.Claims) {
		if name, ok := c.Client(); ok {
			cls.Used(name, ec.RealIP(), clk.Now())
		}
	})
	rotate := func() error {
		if cfg.SecretFile != "" {
			return ErrExternalSecret
		}
		key, err := secret.Rotate(dir)
		if err != nil {
			return err
		}
		if err := tokens.SetKey(key); err != nil {
			return err
		}
		secretInfo.set(key, clk.Now())
		log.Warn("rotated the signing secret: every token issued before is now refused")
		return nil
	}

	var cert *tlscert.Cert
	var autoCert *tlscert.Auto
	switch cfg.TLS {
	case "auto":
		if autoCert, err = tlscert.OpenAuto(dir, log, clk.Now); err != nil {
			break
		}
		// Its dates came from the clock at first start, perhaps 1970:
		// re-sign it before its fingerprint is shown, when the time is
		// trusted already; Serve watches for trust otherwise.
		if clk.Trusted() {
			if _, err := autoCert.Renew(clk.Now()); err != nil {
				log.Error("could not renew the TLS certificate; serving the old one", "err", err)
			}
		}
		cert = autoCert.Cert()
	case "files":
		cert, err = tlscert.LoadFiles(cfg.TLSCert, cfg.TLSKey)
	}
	if err != nil {
		return nil, err
	}
	fingerprint := func() string { return "" }
	switch {
	case autoCert != nil:
		fingerprint = func() string { return autoCert.Cert().Fingerprint }
	case cert != nil:
		fingerprint = func() string { return cert.Fingerprint }
	}
	if cert != nil {
		log.Info("HTTPS on; pin this certificate's SHA-256 fingerprint in clients",
			"sha256", cert.Fingerprint, "not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	}

	// Monotonic time.Now, not camd's clock: an NTP step must neither lock
	// nor unlock anybody.
	passwords := NewPasswordGate(owner, lockout.New(lockout.Config{}), cfg.LockoutPrefix())

	e := newEcho(log, cfg.Proxies())
	for _, info := range reg.Modules() {
		m := info.New()
		d := Deps{
			Config:         cfg,
			Log:            log.With("module", info.ID),
			Echo:           e,
			Clock:          clk,
			Tokens:         tokens,
			Owner:          owner,
			Passwords:      passwords,
			Acks:           acks,
			Clients:        cls,
			RotateSecret:   rotate,
			TLSFingerprint: fingerprint,
			Version:        opt.Version,
			Secret:         secretInfo.get,
		}
		if err := m.Provision(d); err != nil {
			return nil, fmt.Errorf("provision module %q: %w", info.ID, err)
		}
	}

	a := &App{cfg: cfg, log: log, echo: e, clock: clk, clients: cls, autoCert: autoCert}
	a.conns = newConnLimiter(cfg, cert != nil, log)
	a.server = &http.Server{
		ConnState:         a.conns.ConnState,
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	switch {
	case autoCert != nil:
		a.server.TLSConfig = autoCert.ServerConfig()
	case cert != nil:
		a.server.TLSConfig = tlscert.ServerConfig(cert)
	}
	return a, nil
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
// accepting, lets in-flight requests finish (up to shutdownTimeout) and
// returns nil.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// The clock runs for as long as the server does, and stops after it so
	// that its last-known-good time is written at shutdown.
	// Likewise the clients' "last used" times.
	clockCtx, stopClock := context.WithCancel(context.Background())
	var background sync.WaitGroup
	if r, ok := a.clock.(runner); ok {
		background.Go(func() { r.Run(clockCtx) })
	}
	background.Go(func() { a.clients.Run(clockCtx, a.log) })
	if a.autoCert != nil {
		// Checked each second: it costs a clock read, and the first
		// sync of a cam that booted at 1970 comes soon after start.
		background.Go(func() { a.autoCert.Watch(clockCtx, a.clock, time.Second) })
	}
	defer func() { stopClock(); background.Wait() }()

	tls := a.server.TLSConfig != nil
	a.log.Info("listening", "addr", ln.Addr().String(), "tls", tls)
	if !tls {
		ln = jsonErrors(ln)
	}
	// Beneath TLS, so a refused connection costs no handshake.
	ln = a.conns.Listener(ln)
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
	a.log.Info("shutting down", "grace", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := a.server.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	a.log.Info("stopped")
	return nil
}
