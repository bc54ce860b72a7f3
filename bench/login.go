package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// loginParallel is the number of clients that log in over and over while
// reads are measured.
const loginParallel = 4

// maxLoginsEach bounds each login loop: at 10 ms a check it would take far
// longer than any phase is allowed.
const maxLoginsEach = 100_000

// loginPhase runs phase 3 on the read phase's camd: it times sequential logins,
// then compares read latency with and without logins running beside it.
func (b *bench) loginPhase(ctx context.Context) error {
	camd := b.readCamd
	if camd == nil {
		return errors.New("no camd from the read phase")
	}
	defer camd.kill() // on an early return; a no-op after stop
	ms, err := timeLogins(ctx, camd, b.password, b.logins)
	if err != nil {
		return err
	}
	b.loginMs = median(ms)
	b.rows = append(b.rows, row{
		what:   fmt.Sprintf("POST /api/login, sequential, median of %d: ms", b.logins),
		camd:   num(b.loginMs),
		figure: "argon2id check + token",
	})

	alone, err := b.measureRead(ctx, camd, b.token, b.requests)
	if err != nil {
		return err
	}

	// 4 clients log in back to back until the read run ends; each loop is
	// also bounded by the phase's context and a count.
	lctx, stop := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		done     atomic.Int64
		loginErr atomic.Pointer[error]
	)
	for range loginParallel {
		wg.Go(func() {
			for n := 0; n < maxLoginsEach && lctx.Err() == nil; n++ {
				if _, err := login(lctx, camd, b.password); busy(err) {
					// camd checks at most 2 passwords per address at
					// once and refuses the others at once.
					time.Sleep(5 * time.Millisecond)
					continue
				} else if err != nil {
					if lctx.Err() == nil {
						loginErr.CompareAndSwap(nil, &err)
					}
					return
				}
				done.Add(1)
			}
		})
	}
	busy, err := b.measureRead(ctx, camd, b.token, b.requests)
	stop()
	wg.Wait()
	if err != nil {
		return err
	}
	if p := loginErr.Load(); p != nil {
		return fmt.Errorf("login beside reads: %w", *p)
	}
	aP99, bP99 := alone.p(99), busy.p(99)
	what := fmt.Sprintf("GET /api/ack p99 µs, %d requests: ", b.requests)
	b.rows = append(b.rows,
		row{what: what + "alone", camd: num(aP99)},
		row{what: what + fmt.Sprintf("%d logins looping", loginParallel), camd: num(bP99),
			figure: ratio(bP99, aP99) + "×", goal: "≤ 2×", met: verdict(bP99/aP99 <= 2)},
	)
	b.notes = append(b.notes, fmt.Sprintf("logins beside reads: %d logins in %.1f s (%.0f/s); reads %s req/s alone, %s req/s with them.",
		done.Load(), busy.elapsed.Seconds(), float64(done.Load())/busy.elapsed.Seconds(), num(alone.rps()), num(busy.rps())))
	return camd.stop()
}
