package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// readConns is the number of keep-alive connections (and goroutines) the
// authenticated-read load uses.
const readConns = 32

// serverRun is one measured load run against one server.
type serverRun struct {
	result
	cpuUs float64 // server CPU time per request, µs
}

// measure runs l against s and reads the server's CPU time around it.
func (b *bench) measure(ctx context.Context, s *server, l load) (serverRun, error) {
	t0, err := cpuTicks(s.pid())
	if err != nil {
		return serverRun{}, err
	}
	res, err := l.run(ctx)
	if err != nil {
		return serverRun{}, fmt.Errorf("%s: %w", s.name, err)
	}
	t1, err := cpuTicks(s.pid())
	if err != nil {
		return serverRun{}, err
	}
	cpuSeconds := float64(t1-t0) / float64(b.clkTck)
	return serverRun{result: res, cpuUs: cpuSeconds / float64(l.n) * 1e6}, nil
}

// measureRead sends n authenticated GET /api/ack to s.
func (b *bench) measureRead(ctx context.Context, s *server, token string, n int) (serverRun, error) {
	return b.measure(ctx, s, load{method: http.MethodGet, url: s.url("/api/ack"), token: token, conns: readConns, n: n})
}

// readPhase runs phase 1: camd against the reference in alternating rounds,
// camd's output (the access log) written to a regular file. It leaves camd
// running for the login phase, which compares read latency on the same
// process.
func (b *bench) readPhase(ctx context.Context) error {
	if err := b.firstStart(ctx); err != nil {
		return err
	}
	logFile := b.logPath("camd-read")
	camd, err := start(ctx, "camd", outputToFile(camdOptions(b.camdBin, b.dataDir, "127.0.0.1:0", childEnv()), logFile), logFile)
	if err != nil {
		return err
	}
	b.readCamd = camd // killAll ends it on an early return
	if err := stderrIsFile(camd, logFile); err != nil {
		return err
	}
	key, _ := hex.DecodeString(b.refKey)
	refToken, err := resign(b.token, key)
	if err != nil {
		return err
	}
	ref, err := startReference(ctx, b.refBin, b.refKey, "127.0.0.1:0", b.logPath("reference-read"))
	if err != nil {
		return err
	}
	defer ref.kill()

	// Warm up both (connections, heap size, the CPU's caches) before
	// anything counts.
	warm := min(b.requests, 5000)
	for _, s := range []struct {
		srv   *server
		token string
	}{{camd, b.token}, {ref, refToken}} {
		if _, err := b.measureRead(ctx, s.srv, s.token, warm); err != nil {
			return err
		}
	}

	// Alternate, and swap which goes first every round, so that a slow
	// stretch of the machine (another tenant, thermal limits) hits both.
	var camdRuns, refRuns []serverRun
	for r := range b.rounds {
		for i := range 2 {
			if (i+r)%2 == 0 {
				run, err := b.measureRead(ctx, camd, b.token, b.requests)
				if err != nil {
					return err
				}
				camdRuns = append(camdRuns, run)
			} else {
				run, err := b.measureRead(ctx, ref, refToken, b.requests)
				if err != nil {
					return err
				}
				refRuns = append(refRuns, run)
			}
		}
	}
	b.readRows(camdRuns, refRuns)
	if st, err := os.Stat(logFile); err == nil {
		b.notes = append(b.notes, fmt.Sprintf("camd's access log in the read phase: on, stderr a regular file (%s), %s written.", fsType(logFile), mib(st.Size()/1024)))
	}
	if err := ref.stop(); err != nil {
		return err
	}
	b.refToken = refToken
	return nil
}

// firstStart starts camd once on the new data directory, through the pipe
// that keeps the initial password line out of every file, and gets the
// password, an owner token and the one ack GET /api/ack needs (it answers
// 404 until there is one). Every later start finds the directory made.
func (b *bench) firstStart(ctx context.Context) error {
	camd, err := startCamd(ctx, b.camdBin, b.dataDir, "127.0.0.1:0", b.logPath("camd-first"), childEnv())
	if err != nil {
		return err
	}
	defer camd.kill() // on an early return; a no-op after stop
	if camd.Password == "" {
		return errors.New("camd printed no initial owner password: the data directory was not new")
	}
	b.password = camd.Password
	if b.token, err = login(ctx, camd, b.password); err != nil {
		return err
	}
	if err := ack(ctx, camd, b.token, 1); err != nil {
		return err
	}
	return camd.stop()
}

// readRows adds the medians of the read rounds to the table.
func (b *bench) readRows(camd, ref []serverRun) {
	med := medianOf
	rps := func(r serverRun) float64 { return r.rps() }
	p50 := func(r serverRun) float64 { return r.p(50) }
	p99 := func(r serverRun) float64 { return r.p(99) }
	cpu := func(r serverRun) float64 { return r.cpuUs }

	what := fmt.Sprintf("GET /api/ack, %d conns, median of %d: ", readConns, b.rounds)
	cRPS, rRPS := med(camd, rps), med(ref, rps)
	cP99, rP99 := med(camd, p99), med(ref, p99)
	cCPU, rCPU := med(camd, cpu), med(ref, cpu)
	b.notes = append(b.notes, fmt.Sprintf("GET /api/ack req/s per round: camd %s; reference %s.", perRound(camd), perRound(ref)))
	b.rows = append(b.rows,
		row{what + "req/s", num(cRPS), num(rRPS), ratio(cRPS, rRPS), "≥ 0.90", verdict(cRPS/rRPS >= 0.90)},
		row{what + "p50 µs", num(med(camd, p50)), num(med(ref, p50)), ratio(med(camd, p50), med(ref, p50)), "", ""},
		row{what + "p99 µs", num(cP99), num(rP99), ratio(cP99, rP99), "≤ 1.2", verdict(cP99/rP99 <= 1.2)},
		row{what + "server CPU µs/req", num(cCPU), num(rCPU), ratio(cCPU, rCPU), "≤ 1.15", verdict(cCPU/rCPU <= 1.15)},
	)
}

// medianOf is the median of f over runs.
func medianOf(runs []serverRun, f func(serverRun) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return median(xs)
}

// perRound lists each run's requests per second, for a note.
func perRound(runs []serverRun) string {
	var out []string
	for _, r := range runs {
		out = append(out, num(r.rps()))
	}
	return strings.Join(out, ", ")
}
