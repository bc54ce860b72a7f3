// Command camd is the cam's authenticated HTTP API server. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"camd/app"
	"camd/config"
	_ "camd/modules/standard"
)

// version and buildTime are stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.buildTime=2026-11-28T12:00:00Z"
//
// No clock reading before buildTime is trusted.
var version, buildTime = "", ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve", "passwd", "healthcheck":
	case "client":
		return app.ClientMain(args, os.LookupEnv, config.HostSystem(), os.Stdout, os.Stderr, buildTime)
	case "version":
		fmt.Println("camd", buildVersion())
		return 0
	case "help":
		args = []string{"--help"}
	default:
		fmt.Fprintf(os.Stderr, "camd: unknown command %q (see camd --help)\n", cmd)
		return 2
	}
	cfg, err := config.Parse(cmd, args, os.LookupEnv, config.HostSystem(), os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "camd: %v\n", err)
		return 2
	}
	if cmd == "healthcheck" {
		if err := app.Healthcheck(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	if cmd == "passwd" {
		if err := app.Passwd(cfg, os.Stdin, os.Stderr, buildTime); err != nil {
			fmt.Fprintf(os.Stderr, "camd passwd: %v\n", err)
			return 1
		}
		return 0
	}
	log := newLogger(cfg.LogFormat, os.Stderr)
	// A soft limit keeps the heap small on a cam; GOMEMLIMIT, when set, is
	// the runtime's own setting and wins.
	if n, _ := cfg.MemoryLimitBytes(); n > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(n)
		log.Info("memory limit", "soft_limit", cfg.MemoryLimit)
	}
	a, err := app.New(cfg, app.Options{Log: log, Stderr: os.Stderr, Version: buildVersion(), BuildTime: buildTime})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := a.ListenAndServe(ctx); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// buildVersion is the stamped version, else the module version Go recorded,
// else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
