package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// load describes one run of the load generator: n requests spread over
// conns keep-alive connections.
type load struct {
	method string
	url    string
	token  string             // sent as "Authorization: Bearer <token>"
	body   func(i int) []byte // request i's JSON body; nil for none
	conns  int
	n      int
}

// result is what one run measured.
type result struct {
	n       int
	elapsed time.Duration
	sorted  []time.Duration // every request's latency, ascending
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// p returns the p-th percentile latency in microseconds.
func (r result) p(p float64) float64 {
	return float64(percentile(r.sorted, p)) / float64(time.Microsecond)
}

// newClient returns a client for conns concurrent requests to one host.
// MaxIdleConnsPerHost matches the concurrency: with Go's default of 2 the
// other connections would be closed after each request and the run would
// measure TCP handshakes instead of keep-alive requests. Proxy is nil so
// that a proxy variable in the environment cannot route 127.0.0.1 anywhere.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// run sends l.n requests from l.conns goroutines that pull request numbers
// from one shared counter, so a slow connection does not leave the others
// idle at the end. Any request that fails or does not answer 200 stops the
// run with an error: a figure with failures mixed in would mean nothing.
func (l load) run(parent context.Context) (result, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	client := newClient(l.conns)
	defer client.CloseIdleConnections()

	lat := make([]time.Duration, l.n) // each slot written by one goroutine only
	var next atomic.Int64
	var (
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	start := time.Now()
	for range l.conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= l.n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := l.do(ctx, client, i); err != nil {
					fail(fmt.Errorf("%s %s, request %d: %w", l.method, l.url, i, err))
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if parent.Err() != nil {
		// The phase timed out or was interrupted: say that, not which
		// request happened to notice it.
		return result{}, fmt.Errorf("%s %s: %w", l.method, l.url, context.Cause(parent))
	}
	if firstErr != nil {
		return result{}, firstErr
	}
	slices.Sort(lat)
	return result{n: l.n, elapsed: elapsed, sorted: lat}, nil
}

// do sends request i and reads the whole answer, so that the connection
// goes back to the pool.
func (l load) do(ctx context.Context, client *http.Client, i int) error {
	var body io.Reader
	if l.body != nil {
		body = bytes.NewReader(l.body(i))
	}
	req, err := http.NewRequestWithContext(ctx, l.method, l.url, body)
	if err != nil {
		return err
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	msg, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", res.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order: the smallest value that at least
// p percent of the values are less than or equal to. Nearest rank never
// interpolates, so p99 is a latency some request really had.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// median returns the median of xs, the mean of the middle two for an even
// count; NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
