package token_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"camd/token"
)

// TestClientTokensAndKeys: client tokens carry name, id and scopes; SetKey
// refuses every token signed with the old key. (Refusing a correctly signed
// token of a revoked client is the auth service's: see camd/auth.)
func TestClientTokensAndKeys(t *testing.T) {
	a, _ := newAuthority(t)
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
	if d := c.ExpiresAt.Sub(c.IssuedAt.Time); d != token.ClientTTL {
		t.Errorf("client lifetime %v, want %v", d, token.ClientTTL)
	}
	scopes := []struct {
		claims *token.Claims
		scope  string
		want   bool
	}{
		{c, "ack:read", true},
		{c, "ack", false},
		{&token.Claims{Scope: "ack ack:read"}, "ack", true},
		{&token.Claims{Scope: "ackx"}, "ack", false},
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
	for _, bad := range [][2]string{{"", "id"}, {"name", ""}} {
		if tok, err := a.IssueClient(bad[0], bad[1], nil); err == nil {
			t.Errorf("IssueClient(%q, %q) = %q, want an error", bad[0], bad[1], tok)
		}
	}

	owner, _ := a.IssueOwner("v1")
	if c, err := a.Verify(owner); err != nil || c.PasswordVersion != "v1" {
		t.Fatalf("owner token: %+v, %v", c, err)
	}
	if err := a.SetKey(make([]byte, 16)); err == nil {
		t.Error("SetKey accepted a 16-byte key")
	}
	if _, err := a.Verify(owner); err != nil {
		t.Errorf("a refused SetKey changed the key: %v", err)
	}
	if err := a.SetKey(otherKey); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(owner); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("token of the old key after SetKey: %v", err)
	}
	fresh, _ := a.IssueOwner("v1")
	if _, err := a.Verify(fresh); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
}

func ownerClaims() *token.Claims {
	c := &token.Claims{}
	c.Subject = token.OwnerSubject
	return c
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, token.MinKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifyReasons: every refusal wraps ErrInvalid, and the two a client
// acts on differently are told apart: ErrExpired (log in again) and
// ErrRotated (signed with a key SetKey replaced: ask for a new credential).
// A token of a key camd never had is neither.
func TestVerifyReasons(t *testing.T) {
	a, clk := newAuthority(t)
	current := mustIssue(t, a, "owner")
	clk.now = t0.Add(-2 * ttl)
	expired := mustIssue(t, a, "owner")
	clk.now = t0

	replaced, _ := newAuthority(t) // signs with testKey, which a replaces below
	beforeRotation := mustIssue(t, replaced, "owner")
	clk.now = t0.Add(-2 * ttl)
	expiredBeforeRotation := mustIssue(t, replaced, "owner")
	clk.now = t0

	stranger, err := token.NewAuthority(randomKey(t), ttl, clk.Clock())
	if err != nil {
		t.Fatal(err)
	}
	foreign := mustIssue(t, stranger, "owner")

	tests := []struct {
		name             string
		tok              string
		rotate           bool // SetKey first
		expired, rotated bool // the wanted reasons; both false and valid true: accepted
		valid            bool
	}{
		{name: "current key", tok: current, valid: true},
		{name: "expired", tok: expired, expired: true},
		{name: "a key camd never had", tok: foreign},
		{name: "garbage", tok: "not.a.token"},
		{name: "replaced key", tok: beforeRotation, rotate: true, rotated: true},
		// A replaced key makes a token worthless whatever its claims say;
		// the reason given is the rotation.
		{name: "replaced key, expired as well", tok: expiredBeforeRotation, rotate: true, rotated: true},
		{name: "a key camd never had, after a rotation", tok: foreign, rotate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk := newAuthority(t)
			if tt.rotate {
				if err := a.SetKey(otherKey); err != nil {
					t.Fatal(err)
				}
			}
			clk.now = t0
			claims, err := a.Verify(tt.tok)
			if tt.valid {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if claims != nil || !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want no claims and ErrInvalid", claims, err)
			}
			if got := errors.Is(err, token.ErrExpired); got != tt.expired {
				t.Errorf("errors.Is(%v, ErrExpired) = %v, want %v", err, got, tt.expired)
			}
			if got := errors.Is(err, token.ErrRotated); got != tt.rotated {
				t.Errorf("errors.Is(%v, ErrRotated) = %v, want %v", err, got, tt.rotated)
			}
		})
	}
}

// TestSetKeyRetiredBound: a token of a replaced key is told apart for the
// last 4 replaced keys only; older ones read as any forgery (ErrInvalid
// alone), so memory stays bounded however often the secret is rotated.
func TestSetKeyRetiredBound(t *testing.T) {
	const kept = 4 // token.maxRetired
	a, _ := newAuthority(t)
	keys := [][]byte{testKey}
	toks := []string{mustIssue(t, a, "owner")} // toks[i] is signed with keys[i]
	for i := 1; i <= kept+1; i++ {
		k := randomKey(t)
		if err := a.SetKey(k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		toks = append(toks, mustIssue(t, a, "owner"))
		// After i rotations the keys 0..i-1 are replaced; the newest kept
		// of them are told apart.
		for j := 0; j < i; j++ {
			_, err := a.Verify(toks[j])
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("after %d rotations, token of key %d: %v, want ErrInvalid", i, j, err)
			}
			want := i-j <= kept
			if got := errors.Is(err, token.ErrRotated); got != want {
				t.Errorf("after %d rotations, token of key %d: ErrRotated %v, want %v (%v)", i, j, got, want, err)
			}
		}
		if _, err := a.Verify(toks[i]); err != nil {
			t.Errorf("after %d rotations, token of the current key: %v", i, err)
		}
	}
	if bytes.Equal(keys[0], keys[len(keys)-1]) {
		t.Fatal("test setup: random keys repeat")
	}
}

// TestSetKeyConcurrent: rotations racing with Verify and Issue (run it with
// -race) are safe, and the key current at the end signs valid tokens.
func TestSetKeyConcurrent(t *testing.T) {
	a, _ := newAuthority(t)
	var wg sync.WaitGroup
	const rotations = 50
	for range 2 {
		wg.Go(func() {
			for range rotations / 2 {
				if err := a.SetKey(randomKey(t)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range rotations {
			tok, err := a.IssueOwner("v")
			if err != nil {
				t.Error(err)
				return
			}
			// Signed with whatever key was current: accepted, or refused
			// as every refusal is.
			if _, err := a.Verify(tok); err != nil && !errors.Is(err, token.ErrInvalid) {
				t.Errorf("a token of a key current moments ago: %v", err)
			}
		}
	})
	wg.Wait()
	final, err := a.IssueOwner("v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(final); err != nil {
		t.Errorf("token of the final key: %v", err)
	}
}
