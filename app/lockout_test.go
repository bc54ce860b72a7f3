package app_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"camd/apierr"
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
	// Past half of the 4096 entries the table is under pressure, and the
	// attempts of all addresses share one budget: the rest of a fast flood
	// is refused with 503 and Retry-After instead of being hashed.
	busy := 0
	flood := func(from, to int) {
		for i := from; i < to; i++ {
			addr := fmt.Sprintf("198.%d.%d.%d", 18+i>>16&1, i>>8&255, i&255)
			r := doWith(t, client, "POST", s.URL+"/api/login", `{"user":"owner","pass":"wrong-password"}`, jsonCT, "X-Forwarded-For: "+addr)
			switch {
			case r.Status == http.StatusUnauthorized && i < 2048:
			case r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") == "1" && i >= 2048:
				busy++
			case r.Status == http.StatusUnauthorized:
			default:
				t.Fatalf("attempt %d from %s: %d %s", i, addr, r.Status, r.Body)
			}
			if want := lockoutCode(r.Status); !strings.Contains(r.Body, `"code":"`+string(want)+`"`) {
				t.Fatalf("attempt %d from %s: %d %s, want code %s", i, addr, r.Status, r.Body, want)
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
	if busy < 7000 {
		t.Errorf("%d of 10,500 attempts refused as busy; want most of those past the first 2048 addresses", busy)
	}
	// The owner, at another address, is not locked out by any of it: at
	// worst told to come back a second later.
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT, "X-Forwarded-For: 203.0.113.9")
	if r.Status == http.StatusServiceUnavailable {
		time.Sleep(time.Second)
		r = do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT, "X-Forwarded-For: 203.0.113.9")
	}
	if r.Status != http.StatusOK {
		t.Errorf("owner login after the flood: %d %s", r.Status, r.Body)
	}
}

// TestLockoutIPv6Prefix: an IPv6 client is counted by its /64 (or the
// configured prefix), so hopping between the addresses one host holds buys
// no more guesses; other prefixes, and IPv4, are counted apart.
func TestLockoutIPv6Prefix(t *testing.T) {
	tests := []struct {
		name    string
		prefix  int // 0: the default
		guesses []string
		then    string
		want    int
	}{
		{"one /64, five addresses", 0, []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3", "2001:db8:1:2:1:2:3:4", "2001:db8:1:2::5"}, "2001:db8:1:2::6", http.StatusTooManyRequests},
		{"next /64 is apart", 0, []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3", "2001:db8:1:2::4", "2001:db8:1:2::5"}, "2001:db8:1:3::1", http.StatusOK},
		{"IPv4-mapped is the IPv4 address", 0, []string{"192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7"}, "::ffff:192.0.2.7", http.StatusTooManyRequests},
		{"prefix /56 covers the /64s in it", 56, []string{"2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1", "2001:db8:1:5::1", "2001:db8:1:6::1"}, "2001:db8:1:7::1", http.StatusTooManyRequests},
		{"prefix /128 counts each address", 128, []string{"2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1"}, "2001:db8:1:2::2", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, "", serverOpts{quiet: true, cfg: func(c *config.Config) {
				c.TrustedProxies = "127.0.0.1/32"
				c.LockoutIPv6Prefix = tt.prefix
			}})
			for _, from := range tt.guesses {
				r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"wrong-password"}`, jsonCT, "X-Forwarded-For: "+from)
				if r.Status != http.StatusUnauthorized {
					t.Fatalf("guess from %s: %d %s", from, r.Status, r.Body)
				}
				checkError(t, r, apierr.InvalidCredentials)
			}
			r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT, "X-Forwarded-For: "+tt.then)
			if r.Status != tt.want {
				t.Fatalf("the owner's password from %s: %d %s; want %d", tt.then, r.Status, r.Body, tt.want)
			}
			if tt.want == http.StatusTooManyRequests {
				checkError(t, r, apierr.LockedOut)
			}
		})
	}
}

// lockoutCode is the code of a refused login's status: a wrong password,
// a full gate, a locked address.
func lockoutCode(status int) apierr.Code {
	switch status {
	case http.StatusServiceUnavailable:
		return apierr.Busy
	case http.StatusTooManyRequests:
		return apierr.LockedOut
	}
	return apierr.InvalidCredentials
}
