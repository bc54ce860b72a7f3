package auth

// In-package tests of the Echo adapters' parsing: retryAfter, and a fuzz
// target for bearerToken (moved here from camd/token with the Bearer
// middleware). `go test` replays the seeds below and testdata/fuzz; see
// SECURITY.md for the long runs, e.g.
//
//	go test ./auth -run '^$' -fuzz '^FuzzBearerToken$' -fuzztime 10m -parallel 1

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"camd/platform/clock"
	"camd/token"
)

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

// FuzzBearerToken: the Authorization value parser never panics, and finds a
// token exactly when the value is "Bearer" (in any ASCII case), one space,
// optional further spaces and a non-empty rest, which is the token.
func FuzzBearerToken(f *testing.F) {
	a, err := token.NewAuthority(bytes.Repeat([]byte{0x6b}, 32), token.DefaultTTL,
		clock.Func(func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }))
	if err != nil {
		f.Fatal(err)
	}
	tok, err := a.IssueOwner("")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"Bearer " + tok, "bearer " + tok, "BEARER   " + tok, "Bearer\t" + tok, "Bearer", "Bearer ", "Bearer  ",
		"Bearer" + tok, "Basic b3duZXI6eA==", " Bearer " + tok, "Bearer " + tok + " x", "Bearer \x00",
		"Beare\u0280 x", "\u212aearer x", "Bearer\u00a0x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		got, ok := bearerToken(auth)
		// The oracle, byte by byte: no Unicode case folding, which would
		// let other spellings of the scheme through.
		want, wantOK := "", false
		if len(auth) > 7 && strings.ToLower(auth[:6]) == "bearer" && auth[6] == ' ' {
			want = strings.TrimLeft(auth[7:], " ")
			wantOK = want != ""
		}
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("bearerToken(%q) = %q, %v; want %q, %v", auth, got, ok, want, wantOK)
		}
	})
}
