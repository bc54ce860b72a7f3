package token

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/platform/clock"
)

// fakeClock is a clock whose trust and next sync a test sets.
type fakeClock struct {
	trusted atomic.Bool
	next    time.Time
}

func (f *fakeClock) Now() time.Time { return time.Now() }
func (f *fakeClock) Trusted() bool  { return f.trusted.Load() }
func (f *fakeClock) Status() clock.Status {
	return clock.Status{Trusted: f.trusted.Load(), NextSync: f.next}
}

// TestRequireTrustedClock: while the clock is untrusted, login and the
// bearer chain answer 503 with Retry-After and never reach the handler.
func TestRequireTrustedClock(t *testing.T) {
	clk := &fakeClock{next: time.Now().Add(7 * time.Second)}
	a, err := NewAuthority(make([]byte, 32), time.Hour, clk)
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := a.Bearer()
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	var reached atomic.Int64
	h := func(c echo.Context) error { reached.Add(1); return c.NoContent(http.StatusNoContent) }
	e.POST("/login", h, a.RequireTrustedClock())
	e.GET("/protected", h, bearer)

	for _, path := range []string{"/login", "/protected"} {
		method := http.MethodPost
		if path == "/protected" {
			method = http.MethodGet
		}
		tok, _ := a.Issue("owner")
		clk.trusted.Store(false)
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "7" {
			t.Errorf("%s untrusted: %d, Retry-After %q; want 503 and 7", path, rec.Code, rec.Header().Get("Retry-After"))
		}
		clk.trusted.Store(true)
		rec = httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Errorf("%s trusted: %d, want 204", path, rec.Code)
		}
	}
	if reached.Load() != 2 {
		t.Errorf("handler ran %d times, want only for the 2 trusted requests", reached.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		next time.Time
		want int
	}{
		{time.Time{}, 10},                     // no sync planned
		{now.Add(-time.Minute), 1},            // overdue
		{now.Add(1500 * time.Millisecond), 2}, // rounded up
		{now.Add(4 * time.Minute), 240},       // backoff
		{now.Add(time.Hour), 300},             // capped
	}
	for _, tc := range tests {
		if got := retryAfter(clock.Status{NextSync: tc.next}, now); got != tc.want {
			t.Errorf("retryAfter(next %v) = %d, want %d", tc.next, got, tc.want)
		}
	}
}

// TestClientTokensAndKeys: client tokens carry name, id and scopes; the
// validator can refuse a correctly signed token; SetKey refuses every token
// signed with the old key.
func TestClientTokensAndKeys(t *testing.T) {
	clk := &fakeClock{}
	clk.trusted.Store(true)
	a, err := NewAuthority(make([]byte, 32), time.Hour, clk)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.IssueClient("porch-esp32", "id-1", []string{"ack:read"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := c.Client(); !ok || name != "porch-esp32" || c.ID != "id-1" {
		t.Errorf("claims %+v: want client porch-esp32 with jti id-1", c)
	}
	if d := c.ExpiresAt.Sub(c.IssuedAt.Time); d != ClientTTL {
		t.Errorf("client lifetime %v, want %v", d, ClientTTL)
	}
	scopes := []struct {
		claims *Claims
		scope  string
		want   bool
	}{
		{c, "ack:read", true},
		{c, "ack", false},
		{&Claims{Scope: "ack ack:read"}, "ack", true},
		{&Claims{Scope: "ackx"}, "ack", false},
		{ownerClaims(), "ack", true},
		{ownerClaims(), "anything", true},
	}
	for _, tc := range scopes {
		if got := tc.claims.HasScope(tc.scope); got != tc.want {
			t.Errorf("%+v HasScope(%q) = %v, want %v", tc.claims, tc.scope, got, tc.want)
		}
	}
	if _, ok := ownerClaims().Client(); ok {
		t.Error("an owner token reads as a client token")
	}

	a.SetValidator(func(c *Claims) error {
		if c.ID == "id-1" {
			return errors.New("revoked")
		}
		return nil
	})
	if _, err := a.Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token the validator refuses: %v, want ErrInvalid", err)
	}
	owner, _ := a.IssueOwner("v1")
	if c, err := a.Verify(owner); err != nil || c.PasswordVersion != "v1" {
		t.Fatalf("owner token: %+v, %v", c, err)
	}
	if err := a.SetKey(make([]byte, 16)); err == nil {
		t.Error("SetKey accepted a 16-byte key")
	}
	newKey := make([]byte, 32)
	newKey[0] = 1
	if err := a.SetKey(newKey); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(owner); !errors.Is(err, ErrInvalid) {
		t.Errorf("token of the old key after SetKey: %v", err)
	}
	fresh, _ := a.IssueOwner("v1")
	if _, err := a.Verify(fresh); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
}

func ownerClaims() *Claims {
	c := &Claims{}
	c.Subject = OwnerSubject
	return c
}
