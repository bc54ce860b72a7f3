// Command camd-snapshot is camd with the standard modules plus the snapshot
// module (examples/snapshot), built the way a firmware builder builds
// theirs: blank imports plug the modules into app.DefaultRegistry, and the
// command line is camd's own, so the module's flag (--snapshot-file) and
// scope (snapshot) appear in camd-snapshot --help and camd-snapshot client
// add --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"camd/cli"
	_ "camd/examples/snapshot"
	_ "camd/modules/standard"
)

// version and buildTime are stamped at build time, as camd's are:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.buildTime=2026-11-28T12:00:00Z" ./examples/snapshot/cmd/camd-snapshot
//
// No clock reading before buildTime is trusted.
var version, buildTime = "", ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Options{Version: version, BuildTime: buildTime})
	stop()
	os.Exit(code)
}
