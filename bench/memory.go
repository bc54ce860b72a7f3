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
	cIdle, cLoaded, cPeak, err := b.rss(ctx, c, b.token)
	if err != nil {
		return err
	}
	if err := c.stop(); err != nil {
		return err
	}
	r, err := startReference(ctx, b.self, b.refKey, "127.0.0.1:0", b.logPath("reference-mem"))
	if err != nil {
		return err
	}
	defer r.kill()
	rIdle, rLoaded, rPeak, err := b.rss(ctx, r, b.refToken)
	if err != nil {
		return err
	}
	if err := r.stop(); err != nil {
		return err
	}
	b.rows = append(b.rows,
		row{what: "RSS idle, 1 s after start (existing data dir)", camd: mib(cIdle), ref: mib(rIdle),
			goal: "≤ 12 MiB", met: verdict(cIdle <= 12*1024)},
		row{what: fmt.Sprintf("RSS after %d GET /api/ack", b.memRequests), camd: mib(cLoaded), ref: mib(rLoaded),
			figure: fmt.Sprintf("peak %s / %s", mib(cPeak), mib(rPeak)), goal: "≤ 24 MiB", met: verdict(cLoaded <= 24*1024)},
		row{what: "camd soft memory limit (GOMEMLIMIT)", camd: memoryLimit(strings.Split(c.Logs(), "\n"), b.help)},
	)
	return nil
}

// rss reads VmRSS 1 s after start, then again (with the peak, VmHWM) after
// b.memRequests authenticated GETs.
func (b *bench) rss(ctx context.Context, s *server, token string) (idle, loaded, peak int64, err error) {
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return 0, 0, 0, context.Cause(ctx)
	}
	if idle, err = statusKiB(s.pid(), "VmRSS"); err != nil {
		return 0, 0, 0, err
	}
	l := load{method: http.MethodGet, url: s.url("/api/ack"), token: token, conns: readConns, n: b.memRequests}
	if _, err := l.run(ctx); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", s.name, err)
	}
	if loaded, err = statusKiB(s.pid(), "VmRSS"); err != nil {
		return 0, 0, 0, err
	}
	if peak, err = statusKiB(s.pid(), "VmHWM"); err != nil {
		return 0, 0, 0, err
	}
	return idle, loaded, peak, nil
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
