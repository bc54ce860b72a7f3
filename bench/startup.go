package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// startupPhase runs phase 4: the time from exec to the first 200 on /healthz,
// with the data directory left by the earlier phases (so camd reuses its
// secret and password hash instead of making them), camd and the reference
// in turn.
func (b *bench) startupPhase(ctx context.Context) error {
	var camdMs, refMs []float64
	for range b.starts {
		d, err := b.timeStart(ctx, true)
		if err != nil {
			return err
		}
		camdMs = append(camdMs, d)
		if d, err = b.timeStart(ctx, false); err != nil {
			return err
		}
		refMs = append(refMs, d)
	}
	c, r := median(camdMs), median(refMs)
	b.rows = append(b.rows, row{
		what: fmt.Sprintf("start-up, exec to first 200 /healthz, median of %d: ms", b.starts),
		camd: num(c), ref: num(r), figure: ratio(c, r), goal: "≤ 1.5", met: verdict(c/r <= 1.5),
	})
	return nil
}

// timeStart starts camd (or the reference) once on a free port and returns
// the milliseconds until /healthz answered 200.
func (b *bench) timeStart(ctx context.Context, camd bool) (float64, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	var s *server
	if camd {
		s, err = launchCamd(b.camdBin, b.dataDir, addr, b.logPath("camd-start"), childEnv())
	} else {
		s, err = launchReference(b.refBin, b.refKey, addr, b.logPath("reference-start"))
	}
	if err != nil {
		return 0, err
	}
	defer s.kill()
	d, err := pollHealthz(ctx, s, "http://"+addr+"/healthz", t0)
	if err != nil {
		return 0, err
	}
	return float64(d) / float64(time.Millisecond), s.stop()
}

// pollHealthz asks url every millisecond until it answers 200, and returns
// the time since t0. Each attempt opens a new connection, as a supervisor's
// probe would; refused connections fail at once on loopback.
func pollHealthz(ctx context.Context, s *server, url string, t0 time.Time) (time.Duration, error) {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		if res, err := client.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Since(t0), nil
			}
		}
		select {
		case <-tick.C:
		case <-s.Done():
			return 0, fmt.Errorf("%s exited before /healthz answered: %v\n%s", s.name, s.Err(), s.tail())
		case <-deadline.C:
			return 0, fmt.Errorf("%s: /healthz did not answer 200 within 30s\n%s", s.name, s.tail())
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}
