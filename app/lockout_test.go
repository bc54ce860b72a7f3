package app_test

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"camd/config"
)

// TestLockoutFloodMemory: 10,000 distinct client addresses (through a
// trusted proxy) each failing a login once do not grow memory past a bound.
// The limiter tracks at most 4096 addresses, about 200 bytes each (under
// 1 MiB); the bound here, 2 MiB, leaves room for the server's own churn.
func TestLockoutFloodMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	s := startServer(t, "", serverOpts{quiet: true, cfg: func(c *config.Config) { c.TrustedProxies = "127.0.0.1/32" }})
	client := &http.Client{}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // a second cycle empties sync.Pool's victim caches
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	flood := func(from, to int) {
		for i := from; i < to; i++ {
			addr := fmt.Sprintf("198.%d.%d.%d", 18+i>>16&1, i>>8&255, i&255)
			r := doWith(t, client, "POST", s.URL+"/api/login", `{"user":"owner","pass":"wrong-password"}`, jsonCT, "X-Forwarded-For: "+addr)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d from %s: %d %s", i, addr, r.Status, r.Body)
			}
		}
	}
	flood(0, 500) // warm up the server's own buffers
	before := heap()
	flood(500, 10_500)
	after := heap()
	growth := int64(after) - int64(before)
	t.Logf("heap growth after 10,000 failing addresses: %d KiB", growth/1024)
	if growth > 2<<20 {
		t.Errorf("heap grew by %d bytes, want under 2 MiB", growth)
	}
	// The owner, at another address, is not locked out by any of it.
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT, "X-Forwarded-For: 203.0.113.9")
	if r.Status != http.StatusOK {
		t.Errorf("owner login after the flood: %d %s", r.Status, r.Body)
	}
}
