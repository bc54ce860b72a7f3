// Command rss measures camd's idle resident memory for scripts/budgets.sh:
//
//	go run ./scripts/rss CAMD_BINARY DATA_DIR
//
// It starts the binary on 127.0.0.1 with --clock system (camdtest), waits
// until it signals readiness and /healthz answers 200, and stops it, so the
// data directory exists and the next start skips the initial password hash,
// which would inflate the figure. It then starts it again the same way,
// lets it settle for a second, reads VmRSS from /proc/PID/status and stops
// it with SIGTERM. It prints VmRSS in KiB on stdout. It is a Go program rather than shell so it
// needs neither curl nor a particular shell's /dev/tcp.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"camd/internal/camdtest"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rss CAMD_BINARY DATA_DIR")
		os.Exit(2)
	}
	kib, err := measure(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
	fmt.Println(kib)
}

func measure(bin, dataDir string) (int, error) {
	first, err := startCamd(bin, dataDir)
	if err != nil {
		return 0, fmt.Errorf("first start: %w", err)
	}
	if err := stop(first); err != nil {
		return 0, fmt.Errorf("first start: %w", err)
	}
	s, err := startCamd(bin, dataDir)
	if err != nil {
		return 0, fmt.Errorf("second start: %w", err)
	}
	defer s.Kill() // on early return; a no-op once stopped
	// Let start-up garbage settle the way it would on an idle cam.
	time.Sleep(time.Second)
	kib, err := vmRSS(s.Pid())
	if err != nil {
		return 0, err
	}
	if err := stop(s); err != nil {
		return 0, err
	}
	return kib, nil
}

// startCamd starts camd, waits until it signals readiness and checks that
// /healthz answers 200. The password line camd prints is never kept or
// printed: camdtest leaves it out of Logs.
func startCamd(bin, dataDir string) (*camdtest.Proc, error) {
	p, err := camdtest.Launch(camdtest.Options{Bin: bin, Dir: dataDir})
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(context.Background()); err != nil {
		return nil, err
	}
	res, err := p.Client.Get(p.URL + "/healthz")
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("GET /healthz: %w\n%s", err, p.Logs())
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		p.Kill()
		return nil, fmt.Errorf("GET /healthz: %d\n%s", res.StatusCode, p.Logs())
	}
	return p, nil
}

// stop sends SIGTERM and wants a clean exit, as a supervisor would.
func stop(p *camdtest.Proc) error {
	code, err := p.Stop()
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("camd after SIGTERM: %v\n%s", p.Err(), p.Logs())
	}
	return nil
}

// vmRSS reads the resident set size in KiB, as the kernel reports it.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
