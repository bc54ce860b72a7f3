package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAccessLogBatches: camd writes its access log in batches, and still
// every request has its line: within a second while it runs, and all of
// them, from several connections at once, when it stops cleanly.
func TestAccessLogBatches(t *testing.T) {
	p := start(t, t.TempDir())
	const path = "/api/ack" // GET without a token: a cheap 401 per request
	lines := func() int {
		return strings.Count(p.logs(), `"path":"`+path+`"`)
	}

	// One request: its line is written within a second, without a stop.
	if r := p.do("GET", path, ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("GET %s: %d", path, r.Status)
	}
	deadline := time.Now().Add(3 * time.Second) // a second, and slack for a loaded machine
	for lines() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the access line of a request 3 s ago is not in the log:\n%s", p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A burst from 8 connections, then SIGTERM straight away: nothing is
	// lost in the buffer.
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := p.try("GET", path, ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if got, want := lines(), 1+workers*each; got != want {
		t.Fatalf("%d access lines after a clean stop, want %d", got, want)
	}
}
