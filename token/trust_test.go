package token

import (
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
