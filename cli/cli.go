// Package cli is camd's command line: serve, passwd, client, healthcheck
// and version. A camd binary's main calls Main with the module registry it
// was built with, so a firmware builder's binary (examples/snapshot) offers
// its own modules' flags and scopes the same way.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"camd/app"
	"camd/config"
	"camd/platform/accesslog"
	"camd/platform/logbuf"
)

// Exit codes of Main.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Options are what Main needs besides its arguments. Zero fields mean the
// real process's.
type Options struct {
	// Registry supplies the modules, their flags and their scopes; nil
	// means app.DefaultRegistry.
	Registry *app.Registry
	// Version is the stamped version; empty falls back to the module
	// version Go recorded, else "dev".
	Version string
	// BuildTime is the RFC 3339 build stamp (may be empty): no clock
	// reading before it is trusted.
	BuildTime string

	Stdin          io.Reader // a terminal *os.File makes camd passwd prompt
	Stdout, Stderr io.Writer
	Env            config.Env    // nil means os.LookupEnv
	System         config.System // zero means config.HostSystem()
}

func (o Options) withDefaults() Options {
	if o.Registry == nil {
		o.Registry = app.DefaultRegistry
	}
	o.Version = buildVersion(o.Version)
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.System.IsMountPoint == nil || o.System.IsDir == nil {
		o.System = config.HostSystem()
	}
	return o
}

// Main runs the camd command line with args (without the program name) and
// returns the exit code: 0, 1 for a failure, 2 for a usage error. ctx ends
// the server (SIGTERM in main).
func Main(ctx context.Context, args []string, opts Options) int {
	opts = opts.withDefaults()
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, opts)
	case "passwd":
		return passwd(args, opts)
	case "client":
		return client(args, opts)
	case "healthcheck":
		return healthcheck(args, opts)
	case "version":
		fmt.Fprintln(opts.Stdout, "camd", opts.Version)
		return exitOK
	case "help":
		_, code := parse("serve", []string{"--help"}, opts)
		return code
	}
	fmt.Fprintf(opts.Stderr, "camd: unknown command %q (see camd --help)\n", cmd)
	return exitUsage
}

// parse reads the flags of a command without arguments of its own. A
// negative code means go on; otherwise the command is done with it (0 after
// --help, 2 for a usage error).
func parse(cmd string, args []string, opts Options) (config.Config, int) {
	cfg, err := config.Parse(cmd, args, opts.Env, opts.System, opts.Stdout, opts.Registry.Flags()...)
	if errors.Is(err, flag.ErrHelp) {
		return config.Config{}, exitOK
	}
	if err != nil {
		fmt.Fprintf(opts.Stderr, "camd %s: %v\n", cmd, err)
		return config.Config{}, exitUsage
	}
	return cfg, -1
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, args []string, opts Options) int {
	cfg, code := parse("serve", args, opts)
	if code >= 0 {
		return code
	}
	// The access log is written in batches (one write a second, or per 16
	// KiB under load), everything else at once; Close writes the rest on
	// the way out.
	logw := logbuf.New(opts.Stderr, logbuf.DefaultSize, logbuf.DefaultDelay)
	defer logw.Close()
	log := newLogger(cfg.LogFormat, logw)
	// A soft limit keeps the heap small on a cam; GOMEMLIMIT, when set, is
	// the runtime's own setting and wins.
	if v, _ := opts.Env("GOMEMLIMIT"); v == "" {
		if n, _ := cfg.MemoryLimitBytes(); n > 0 {
			debug.SetMemoryLimit(n)
			log.Info("memory limit", "soft_limit", cfg.MemoryLimit)
		}
	}
	a, err := app.New(cfg, app.Options{
		Registry: opts.Registry, Log: log, AccessLog: accesslog.New(logw, cfg.LogFormat), Stderr: opts.Stderr, Version: opts.Version, BuildTime: opts.BuildTime,
	})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}
	if err := a.ListenAndServe(ctx); err != nil {
		log.Error("server stopped", "err", err)
		return exitFailure
	}
	return exitOK
}

func newLogger(format string, w *logbuf.Writer) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(logbuf.Handler(h, w))
}

// buildVersion is the stamped version, else the module version Go recorded,
// else "dev".
func buildVersion(stamped string) string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
