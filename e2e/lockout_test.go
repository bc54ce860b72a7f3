package e2e

import (
	"net/http"
	"strconv"
	"testing"
)

func wrongLogin(p *proc, headers ...string) response {
	p.t.Helper()
	return p.do("POST", "/api/login", `{"user":"owner","pass":"wrong-password"}`, headers...)
}

// TestLockout: five failed passwords lock the address out with 429 and
// Retry-After, for login and Basic auth alike, while a valid token from the
// same address keeps working; bad bearer tokens never count.
func TestLockout(t *testing.T) {
	p := start(t, t.TempDir())
	pw := p.Password
	tok := p.login(pw)

	// Bad bearer tokens are not password guesses.
	for range 20 {
		if r := p.do("GET", "/api/ack", "", bearer("not.a.token")); r.Status != 401 {
			t.Fatalf("bad token: %d", r.Status)
		}
	}
	p.login(pw) // still allowed

	for i := range 5 {
		if r := wrongLogin(p); r.Status != 401 {
			t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	for name, r := range map[string]response{
		"login with the right password": p.do("POST", "/api/login", `{"user":"owner","pass":"`+pw+`"}`),
		"admin with the right password": p.do("GET", "/admin", "", basicAuth("owner", pw)),
	} {
		if r.Status != http.StatusTooManyRequests || r.field(t, "error") == nil {
			t.Errorf("%s while locked: %d %s", name, r.Status, r.Body)
		}
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
			t.Errorf("%s: Retry-After %q, want 1 to 60 seconds (the first lock is a minute)", name, r.Header.Get("Retry-After"))
		}
	}
	if r := p.do("POST", "/api/ack", `{"count":1}`, bearer(tok)); r.Status != 200 {
		t.Errorf("valid token from the locked address: %d %s", r.Status, r.Body)
	}
}

// TestForwardedForOnlyFromTrustedProxies: X-Forwarded-For is ignored unless
// --trusted-proxies lists the peer; then the first untrusted hop from the
// right is the client.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Run("ignored by default", func(t *testing.T) {
		p := start(t, t.TempDir())
		for i := range 5 {
			// A guesser that rotates the header is still one address.
			wrongLogin(p, "X-Forwarded-For: 198.51.100."+strconv.Itoa(i))
		}
		if r := wrongLogin(p, "X-Forwarded-For: 198.51.100.99"); r.Status != http.StatusTooManyRequests {
			t.Errorf("rotating X-Forwarded-For escaped the lockout: %d", r.Status)
		}
	})
	t.Run("believed from a trusted proxy", func(t *testing.T) {
		p := start(t, t.TempDir(), "--trusted-proxies=127.0.0.1/32")
		for range 5 {
			wrongLogin(p, "X-Forwarded-For: 198.51.100.7")
		}
		if r := wrongLogin(p, "X-Forwarded-For: 198.51.100.7"); r.Status != http.StatusTooManyRequests {
			t.Errorf("the guessing address is not locked: %d", r.Status)
		}
		// A spoofed leftmost entry does not help: the first untrusted hop
		// from the right is still 198.51.100.7.
		if r := wrongLogin(p, "X-Forwarded-For: 203.0.113.1, 198.51.100.7"); r.Status != http.StatusTooManyRequests {
			t.Errorf("a prepended address escaped the lockout: %d", r.Status)
		}
		// The owner behind the same proxy, at another address, logs in.
		r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+p.Password+`"}`, "X-Forwarded-For: 198.51.100.8")
		if r.Status != 200 {
			t.Errorf("another address behind the proxy: %d %s", r.Status, r.Body)
		}
	})
}
