package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"camd/config"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/ntpclock"
	"camd/platform/tlscert"
)

// openClock is opt.Clock, or the NTP-disciplined clock cfg describes.
func openClock(cfg config.Config, opt Options, dir datadir.Dir) (clock.Clock, error) {
	if opt.Clock != nil {
		return opt.Clock, nil
	}
	return ntpclock.New(ntpclock.Config{
		Mode:           cfg.ClockMode,
		Servers:        cfg.Servers(),
		Interval:       cfg.NTPInterval,
		SetSystemClock: cfg.SetSystemClock,
		Floor:          clock.BuildFloor(opt.BuildTime),
		MaxAhead:       cfg.ClockMaxAhead,
		Dir:            dir,
		Log:            opt.Log.With("module", "clock"),
	})
}

// tlsState is the certificate camd serves, if any.
type tlsState struct {
	config *tls.Config // nil without TLS
	cert   *tlscert.Cert
	// auto is the --tls auto certificate, re-signed once the clock is
	// trusted; nil otherwise.
	auto  *tlscert.Auto
	clock clock.Clock
}

// openTLS loads or makes the certificate cfg asks for.
func openTLS(cfg config.Config, dir datadir.Dir, clk clock.Clock, log *slog.Logger) (*tlsState, error) {
	st := &tlsState{clock: clk}
	var err error
	switch cfg.TLS {
	case "auto":
		if st.auto, err = tlscert.OpenAuto(dir, log, clk.Now); err != nil {
			return nil, err
		}
		// Its dates came from the clock at first start, perhaps 1970:
		// re-sign it before its fingerprint is shown, when the time is
		// trusted already; Run watches for trust otherwise.
		if clk.Trusted() {
			if _, err := st.auto.Renew(clk.Now()); err != nil {
				log.Error("could not renew the TLS certificate; serving the old one", "err", err)
			}
		}
		st.cert, st.config = st.auto.Cert(), st.auto.ServerConfig()
	case "files":
		if st.cert, err = tlscert.LoadFiles(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
		st.config = tlscert.ServerConfig(st.cert)
	}
	if st.cert != nil {
		log.Info("HTTPS on; pin this certificate's SHA-256 fingerprint in clients",
			"sha256", st.cert.Fingerprint, "not_after", st.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return st, nil
}

// fingerprint is the served certificate's SHA-256 fingerprint, empty
// without TLS.
func (st *tlsState) fingerprint() string {
	switch {
	case st.auto != nil:
		return st.auto.Cert().Fingerprint
	case st.cert != nil:
		return st.cert.Fingerprint
	}
	return ""
}

// Run re-signs the auto certificate when the trusted time leaves its
// validity. Checked each second: it costs a clock read, and the first sync
// of a cam that booted at 1970 comes soon after start.
func (st *tlsState) Run(ctx context.Context) { st.auto.Watch(ctx, st.clock, time.Second) }

// provisioned is a module the host has provisioned.
type provisioned struct {
	id     string
	module Module
}

// provision makes and provisions every module of reg in order, then
// validates them. On any failure every module whose Provision was called is
// cleaned up, in reverse order: the one that failed too, which may have
// opened something before it failed.
func (a *App) provision(reg *Registry, dir datadir.Dir, values config.Values, base Deps) (err error) {
	defer func() {
		if err != nil {
			a.cleanup()
		}
	}()
	for _, info := range reg.Modules() {
		d := base
		d.Log = a.log.With("module", info.ID)
		d.Config = values.Only(info.Flags)
		d.DataDir = moduleDir(dir, info, d.Log)
		m := info.New()
		a.modules = append(a.modules, provisioned{info.ID, m})
		if err := m.Provision(d); err != nil {
			return fmt.Errorf("provision module %q: %w", info.ID, err)
		}
		if r, ok := m.(Runner); ok {
			a.runners = append(a.runners, r)
		}
	}
	for _, p := range a.modules {
		if v, ok := p.module.(Validator); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("module %q: %w", p.id, err)
			}
		}
	}
	return nil
}

// moduleDir opens a module's own directory, moving into it the files an
// older camd kept for it at the top.
func moduleDir(top datadir.Dir, info ModuleInfo, log *slog.Logger) func() (datadir.Dir, error) {
	return func() (datadir.Dir, error) {
		d, err := top.Sub(info.ID)
		if err != nil {
			return datadir.Dir{}, err
		}
		for _, name := range info.Files {
			if err := d.Adopt(top, name, log); err != nil {
				return datadir.Dir{}, fmt.Errorf("module %q: %w", info.ID, err)
			}
		}
		return d, nil
	}
}

// reports collects the Reporter modules' reports.
func (a *App) reports() []Report {
	var out []Report
	for _, p := range a.modules {
		if r, ok := p.module.(Reporter); ok {
			out = append(out, r.Report())
		}
	}
	return out
}

// cleanup runs the modules' Cleanup in reverse order, once.
func (a *App) cleanup() {
	a.close.Do(func() {
		for _, p := range slices.Backward(a.modules) {
			if c, ok := p.module.(CleanerUpper); ok {
				if err := c.Cleanup(); err != nil {
					a.log.Error("module cleanup failed", "module", p.id, "err", err)
				}
			}
		}
	})
}

// Close releases what the modules hold, for an App that is not served (or
// no longer); Serve does it at stop.
func (a *App) Close() { a.cleanup() }
