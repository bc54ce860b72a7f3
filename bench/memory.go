package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// memoryPhase runs phase 5: resident memory idle and after load, for camd and,
// for scale, the reference. The token from the first phase is reused (it
// is valid for an hour and camd keeps its secret), so no login and its
// argon2id buffer is in the figure: only what serving requests costs.
func (b *bench) memoryPhase(ctx context.Context) error {
	c, err := startCamd(ctx, b.camdBin, b.dataDir, "127.0.0.1:0", b.logPath("camd-mem"), childEnv())
	if err != nil {
		return err
	}
	defer c.kill()
	cIdle, cLoaded, err := b.rss(ctx, c, b.token)
	if err != nil {
		return err
	}
	if err := c.stop(); err != nil {
		return err
	}
	r, err := startReference(ctx, b.refBin, b.refKey, "127.0.0.1:0", b.logPath("reference-mem"))
	if err != nil {
		return err
	}
	defer r.kill()
	rIdle, rLoaded, err := b.rss(ctx, r, b.refToken)
	if err != nil {
		return err
	}
	if err := r.stop(); err != nil {
		return err
	}
	const split = ", split: anonymous + file-backed"
	loaded := fmt.Sprintf("RSS after %s GET /api/ack", groupThousands(int64(b.memRequests)))
	b.rows = append(b.rows,
		row{what: "RSS idle, 1 s after start (existing data dir)", camd: mib(cIdle.rss), ref: mib(rIdle.rss),
			goal: "≤ 10 MiB", met: verdict(cIdle.rss <= 10*1024)},
		row{what: "RSS idle" + split, camd: cIdle.split(), ref: rIdle.split()},
		row{what: loaded, camd: mib(cLoaded.rss), ref: mib(rLoaded.rss),
			figure: fmt.Sprintf("peak %s / %s", mib(cLoaded.peak), mib(rLoaded.peak)), goal: "≤ 20 MiB", met: verdict(cLoaded.rss <= 20*1024)},
		row{what: loaded + split, camd: cLoaded.split(), ref: rLoaded.split()},
		row{what: "camd soft memory limit (GOMEMLIMIT)", camd: memoryLimit(strings.Split(c.Logs(), "\n"), b.help)},
	)
	b.notes = append(b.notes, "RSS is VmRSS (peak: VmHWM) from /proc/PID/status. The split, read just after it, is from /proc/PID/smaps_rollup: "+
		"anonymous is its Anonymous (heap, stacks, the binary's written data), file-backed is its Rss minus Anonymous "+
		"(pages of the binary and other mapped files, which the kernel can drop and read again).")
	return nil
}

// memSample is a server's resident memory at one moment, in KiB.
type memSample struct {
	rss, peak  int64 // VmRSS and VmHWM
	anon, file int64 // smaps_rollup's Anonymous, and its Rss minus that
}

func (m memSample) split() string {
	return fmt.Sprintf("%.1f + %.1f MiB", float64(m.anon)/1024, float64(m.file)/1024)
}

// sample reads the server's resident memory now.
func sample(s *server) (memSample, error) {
	var m memSample
	var err error
	if m.rss, err = statusKiB(s.pid(), "VmRSS"); err != nil {
		return m, err
	}
	if m.peak, err = statusKiB(s.pid(), "VmHWM"); err != nil {
		return m, err
	}
	kib, err := smapsKiB(s.pid(), "Rss", "Anonymous")
	if err != nil {
		return m, err
	}
	m.anon, m.file = kib[1], kib[0]-kib[1]
	return m, nil
}

// rss samples memory 1 s after start, then again after b.memRequests
// authenticated GETs.
func (b *bench) rss(ctx context.Context, s *server, token string) (idle, loaded memSample, err error) {
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return idle, loaded, context.Cause(ctx)
	}
	if idle, err = sample(s); err != nil {
		return idle, loaded, err
	}
	l := load{method: http.MethodGet, url: s.url("/api/ack"), token: token, conns: readConns, n: b.memRequests}
	if _, err := l.run(ctx); err != nil {
		return idle, loaded, fmt.Errorf("%s: %w", s.name, err)
	}
	loaded, err = sample(s)
	return idle, loaded, err
}

// memoryLimit says which soft memory limit camd ran with: what it logged at
// start ("memory limit", soft_limit), else GOMEMLIMIT from the environment,
// else whether this build has the setting at all.
func memoryLimit(startLog []string, help string) string {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return "GOMEMLIMIT=" + v + " (env)"
	}
	for _, line := range startLog {
		var rec struct {
			Msg       string
			SoftLimit string `json:"soft_limit"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "memory limit" && rec.SoftLimit != "" {
			return rec.SoftLimit + " (camd's log)"
		}
	}
	if !strings.Contains(help, "--memory-limit") {
		return "none (no --memory-limit in this build)"
	}
	return "none logged"
}
