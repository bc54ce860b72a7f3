package token_test

import (
	"bytes"
	"testing"
	"time"

	"camd/platform/clock"
	"camd/token"
)

// benchKey and benchNow are the benchmarks' own fixtures, independent of
// the tests' so that either can change without moving the other.
var (
	benchKey = bytes.Repeat([]byte{0x5a}, 32)
	benchNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
)

// benchAuthority returns an Authority on a fixed, trusted clock.
func benchAuthority(b *testing.B) *token.Authority {
	b.Helper()
	a, err := token.NewAuthority(benchKey, token.DefaultTTL, clock.Func(func() time.Time { return benchNow }))
	if err != nil {
		b.Fatalf("NewAuthority: %v", err)
	}
	return a
}

// BenchmarkVerify measures the per-request token check.
func BenchmarkVerify(b *testing.B) {
	b.Run("owner", func(b *testing.B) {
		a := benchAuthority(b)
		// The format alone; the auth service's password-version check on
		// top is in camd/auth's BenchmarkVerify.
		tok, err := a.IssueOwner("v1")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Verify(tok); err != nil {
			b.Fatalf("Verify: %v", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		a := benchAuthority(b)
		// The format alone; the auth service's revocation check on top is
		// in camd/auth's BenchmarkVerify.
		tok, err := a.IssueClient("porch-esp32", "c-0123456789abcdef", []string{"ack", "ack:read"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Verify(tok); err != nil {
			b.Fatalf("Verify: %v", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIssue measures login's token issuing.
func BenchmarkIssue(b *testing.B) {
	b.Run("owner", func(b *testing.B) {
		a := benchAuthority(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.IssueOwner("v1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
