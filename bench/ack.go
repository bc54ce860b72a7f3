package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ackConns is the number of concurrent clients posting acks.
const ackConns = 16

// groupCommitVar is camd's switch for group commit, on by default.
const groupCommitVar = "CAMD_ACK_GROUP_COMMIT"

// ackPhase runs phase 2: POST /api/ack from 16 clients with group commit
// on and off, alternately, for the read phase's number of rounds; the rows
// are medians. Every 200 means the ack is on disk, so this measures how
// many fsyncs camd needs per ack. One round of each is at the mercy of the
// machine's other work: the grouped side is CPU-bound on two cores shared
// with the load generator, the other waits on fsync.
func (b *bench) ackPhase(ctx context.Context) error {
	what := fmt.Sprintf("POST /api/ack, %d clients, %d acks, median of %d: ", ackConns, b.acks, b.rounds)
	// Only a camd that lists the switch understands it; an older one would
	// ignore the variable and the "OFF" run would measure ON again.
	offOK := strings.Contains(b.help, groupCommitVar)
	var on, off []serverRun
	for range b.rounds {
		r, err := b.ackRun(ctx, childEnv())
		if err != nil {
			return fmt.Errorf("group commit on: %w", err)
		}
		on = append(on, r)
		if !offOK {
			continue
		}
		r, err = b.ackRun(ctx, childEnv(groupCommitVar+"=off"))
		var refused startError
		if errors.As(err, &refused) {
			// A camd that does not take the value refuses to start:
			// report ON alone rather than fail the whole run.
			offOK = false
			b.notes = append(b.notes, "group commit OFF: "+firstLine(refused.Error()))
			continue
		}
		if err != nil {
			return fmt.Errorf("group commit off: %w", err)
		}
		off = append(off, r)
	}
	rps := func(rs []serverRun) float64 { return medianOf(rs, func(r serverRun) float64 { return r.rps() }) }
	p99 := func(rs []serverRun) float64 { return medianOf(rs, func(r serverRun) float64 { return r.p(99) / 1000 }) }
	cpu := func(rs []serverRun) float64 { return medianOf(rs, func(r serverRun) float64 { return r.cpuUs }) }
	onRPS := row{what: what + "req/s, group commit ON", camd: num(rps(on))}
	onP99 := row{what: what + "p99 ms, ON", camd: num(p99(on))}
	onCPU := row{what: what + "server CPU µs/ack, ON", camd: num(cpu(on))}
	if !offOK || len(off) == 0 {
		why := "camd --help has no " + groupCommitVar
		if strings.Contains(b.help, groupCommitVar) {
			why = "camd refused " + groupCommitVar + "=off"
		}
		b.rows = append(b.rows, onRPS,
			row{what: what + "req/s, group commit OFF", figure: "not run: " + why, goal: "ON ≥ 5× OFF", met: "n/a"},
			onP99, onCPU)
		return nil
	}
	b.rows = append(b.rows,
		onRPS,
		row{what: what + "req/s, group commit OFF", camd: num(rps(off)),
			figure: "ON/OFF " + ratio(rps(on), rps(off)) + "×", goal: "ON ≥ 5× OFF", met: verdict(rps(on) >= 5*rps(off))},
		onP99,
		row{what: what + "p99 ms, OFF", camd: num(p99(off))},
		onCPU,
		row{what: what + "server CPU µs/ack, OFF", camd: num(cpu(off))},
	)
	b.notes = append(b.notes, fmt.Sprintf("POST /api/ack req/s per round: group commit ON %s; OFF %s.", perRound(on), perRound(off)))
	return nil
}

// startError is a camd that did not come up, as opposed to one that failed
// under load.
type startError struct{ error }

func (e startError) Unwrap() error { return e.error }

// firstLine is the first line of s, for a one-line note.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// ackRun starts camd with env and posts b.acks acks to it.
func (b *bench) ackRun(ctx context.Context, env []string) (serverRun, error) {
	s, err := startCamd(ctx, b.camdBin, b.dataDir, "127.0.0.1:0", b.logPath("camd-ack"), env)
	if err != nil {
		return serverRun{}, startError{err}
	}
	defer s.kill()
	l := load{
		method: http.MethodPost, url: s.url("/api/ack"), token: b.token, conns: ackConns,
		body: func(i int) []byte { return []byte(`{"count":` + strconv.Itoa(i+1) + `}`) },
	}
	l.n = 2 * ackConns // warm-up: open the connections
	if _, err := l.run(ctx); err != nil {
		return serverRun{}, err
	}
	l.n = b.acks
	res, err := b.measure(ctx, s, l)
	if err != nil {
		return serverRun{}, err
	}
	return res, s.stop()
}
