//go:build camdpprof

// With the camdpprof build tag, camd serves net/http/pprof on the address in
// CAMD_PPROF (loopback only), for profiling the real server under load. The
// tag keeps it out of every shipped build (docs/performance.md).
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("CAMD_PPROF")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "camd: CAMD_PPROF=%q: want a loopback host:port\n", addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "camd: pprof:", err)
		os.Exit(2)
	}
	go http.Serve(ln, nil)
}
