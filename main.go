// Command camd is the cam's authenticated HTTP API server. See README.md;
// the command line itself is package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"camd/cli"
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
	code := cli.Main(ctx, os.Args[1:], cli.Options{Version: version, BuildTime: buildTime})
	stop()
	os.Exit(code)
}
