package token_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"camd/platform/clock"
	"camd/token"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, 32)
	otherKey = bytes.Repeat([]byte{0x24}, 32)
	// t0 has a fractional second: Issue truncates it.
	t0 = time.Date(2024, 5, 6, 7, 8, 9, 600_000_000, time.UTC)
)

const ttl = time.Hour

// testClock is a clock a test can move.
type testClock struct{ now time.Time }

func (c *testClock) Clock() clock.Clock { return clock.Func(func() time.Time { return c.now }) }

func newAuthority(t *testing.T) (*token.Authority, *testClock) {
	t.Helper()
	clk := &testClock{now: t0}
	a, err := token.NewAuthority(testKey, ttl, clk.Clock())
	if err != nil {
		t.Fatalf("NewAuthority: %v", err)
	}
	return a, clk
}

func mustIssue(t *testing.T, a *token.Authority, sub string) string {
	t.Helper()
	tok, err := a.Issue(sub)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

func TestNewAuthority(t *testing.T) {
	clk := clock.Func(func() time.Time { return t0 })
	tests := []struct {
		name    string
		key     []byte
		ttl     time.Duration
		wantErr bool
	}{
		{"nil key", nil, ttl, true},
		{"16-byte key", make([]byte, 16), ttl, true},
		{"31-byte key", make([]byte, 31), ttl, true},
		{"32-byte key", make([]byte, 32), ttl, false},
		{"64-byte key", make([]byte, 64), ttl, false},
		{"zero ttl", testKey, 0, true},
		{"negative ttl", testKey, -time.Second, true},
		{"one nanosecond ttl", testKey, time.Nanosecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := token.NewAuthority(tt.key, tt.ttl, clk)
			if tt.wantErr {
				if err == nil || a != nil {
					t.Errorf("NewAuthority = %v, %v; want nil and an error", a, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewAuthority: %v", err)
			}
			if a.TTL() != tt.ttl {
				t.Errorf("TTL() = %v, want %v", a.TTL(), tt.ttl)
			}
		})
	}
}

func TestIssueEmptySubject(t *testing.T) {
	a, _ := newAuthority(t)
	if tok, err := a.Issue(""); err == nil {
		t.Errorf("Issue(\"\") = %q, want an error", tok)
	}
}

// segments decodes a token's header and payload as JSON objects.
func segments(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[i])
		if err != nil {
			t.Fatalf("segment %d is not unpadded base64url: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("segment %d is not a JSON object: %v", i, err)
		}
	}
	return header, payload
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	a, _ := newAuthority(t)
	tok := mustIssue(t, a, "owner")

	claims, err := a.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	iat := t0.Truncate(time.Second)
	if claims.Issuer != "camd" {
		t.Errorf("iss = %q, want camd", claims.Issuer)
	}
	if !slices.Equal(claims.Audience, jwt.ClaimStrings{"camd-api"}) {
		t.Errorf("aud = %q, want [camd-api]", claims.Audience)
	}
	if claims.Subject != "owner" {
		t.Errorf("sub = %q, want owner", claims.Subject)
	}
	if claims.IssuedAt == nil || !claims.IssuedAt.Equal(iat) {
		t.Errorf("iat = %v, want %v", claims.IssuedAt, iat)
	}
	if claims.ExpiresAt == nil || !claims.ExpiresAt.Equal(iat.Add(ttl)) {
		t.Errorf("exp = %v, want %v", claims.ExpiresAt, iat.Add(ttl))
	}

	// The wire format itself.
	header, payload := segments(t, tok)
	if header["alg"] != "HS256" {
		t.Errorf("header alg = %v, want HS256", header["alg"])
	}
	wantKeys := []string{"aud", "exp", "iat", "iss", "sub"}
	if keys := slices.Sorted(maps.Keys(payload)); !slices.Equal(keys, wantKeys) {
		t.Errorf("claims %q, want exactly %q", keys, wantKeys)
	}
	if aud, ok := payload["aud"].([]any); !ok || len(aud) != 1 || aud[0] != "camd-api" {
		t.Errorf(`aud = %#v, want the array ["camd-api"]`, payload["aud"])
	}
	if payload["iat"] != float64(iat.Unix()) || payload["exp"] != float64(iat.Unix()+3600) {
		t.Errorf("iat, exp = %v, %v; want %d, %d", payload["iat"], payload["exp"], iat.Unix(), iat.Unix()+3600)
	}
}

func TestVerifyLifetime(t *testing.T) {
	a, clk := newAuthority(t)
	tok := mustIssue(t, a, "owner")
	iat := t0.Truncate(time.Second)
	exp := iat.Add(ttl)
	tests := []struct {
		name  string
		at    time.Time
		valid bool
	}{
		{"at iat", iat, true},
		{"at issue", t0, true},
		{"one second before exp", exp.Add(-time.Second), true},
		{"one nanosecond before exp", exp.Add(-time.Nanosecond), true},
		{"at exp", exp, false},
		{"one second after exp", exp.Add(time.Second), false},
		{"a day after exp", exp.Add(24 * time.Hour), false},
		{"iat in the future: clock moved back a second", iat.Add(-time.Second), false},
		{"iat in the future: clock moved back a day", iat.Add(-24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.now = tt.at
			claims, err := a.Verify(tok)
			if tt.valid {
				if err != nil {
					t.Errorf("Verify at %v: %v", tt.at, err)
				}
				return
			}
			if !errors.Is(err, token.ErrInvalid) {
				t.Errorf("Verify at %v = %+v, %v; want ErrInvalid", tt.at, claims, err)
			}
			// Past exp the reason is told (the auth service answers
			// token_expired); an iat in the future is not an expiry.
			if expired := !tt.at.Before(exp); errors.Is(err, token.ErrExpired) != expired {
				t.Errorf("Verify at %v: %v; ErrExpired should be %v", tt.at, err, expired)
			}
			if claims != nil {
				t.Errorf("claims %+v returned with an error", claims)
			}
		})
	}
}

// b64 is the JWS segment encoding: unpadded base64url.
var b64 = base64.RawURLEncoding

// hs256 signs header.payload with HMAC-SHA256 under key, whatever the
// header's alg says.
func hs256(key []byte, signingInput string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signingInput))
	return b64.EncodeToString(m.Sum(nil))
}

// craft builds a token from raw header and payload JSON, HMAC-SHA256-signed
// with key.
func craft(header, payload string, key []byte) string {
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	return in + "." + hs256(key, in)
}

// claimsJSON returns valid claims for t0 as JSON, with changes applied:
// a nil value deletes the claim.
func claimsJSON(changes map[string]any) string {
	iat := t0.Truncate(time.Second).Unix()
	c := map[string]any{"iss": "camd", "aud": []string{"camd-api"}, "sub": "owner", "iat": iat, "exp": iat + 3600}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

func TestVerifyAccepts(t *testing.T) {
	a, _ := newAuthority(t)
	tests := []struct {
		name string
		tok  string
	}{
		{"crafted like Issue", craft(hs256Header, claimsJSON(nil), testKey)},
		{"aud as a plain string", craft(hs256Header, claimsJSON(map[string]any{"aud": "camd-api"}), testKey)},
		{"aud among others", craft(hs256Header, claimsJSON(map[string]any{"aud": []string{"x", "camd-api"}}), testKey)},
		{"header without typ", craft(`{"alg":"HS256"}`, claimsJSON(nil), testKey)},
		// golang-jwt's NumericDate reads a numeric JSON string as a date.
		// camd's hand-written decoder refused it until issue 14 replaced
		// it with golang-jwt's claim types, on purpose: only a key holder
		// can sign such a token.
		{"exp as a numeric string", craft(hs256Header, claimsJSON(map[string]any{"exp": strconv.FormatInt(t0.Unix()+3600, 10)}), testKey)},
		{"iat as a numeric string", craft(hs256Header, claimsJSON(map[string]any{"iat": strconv.FormatInt(t0.Unix(), 10)}), testKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := a.Verify(tt.tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Subject != "owner" {
				t.Errorf("sub = %q", claims.Subject)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	a, _ := newAuthority(t)
	valid := mustIssue(t, a, "owner")
	parts := strings.Split(valid, ".")
	signingInput := parts[0] + "." + parts[1]

	signWith := func(m jwt.SigningMethod, key any) string {
		c := jwt.MapClaims{}
		if err := json.Unmarshal([]byte(claimsJSON(nil)), &c); err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatalf("sign with %s: %v", m.Alg(), err)
		}
		return tok
	}

	// The signature of a 32-byte MAC ends in a character with 2 unused
	// bits, zero when encoded canonically; setting one keeps the bytes for
	// a lenient decoder.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := parts[2]
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	nonCanonicalSig := sig[:len(sig)-1] + string(alphabet[last|1])
	if dec, err := b64.DecodeString(nonCanonicalSig); nonCanonicalSig == sig || err != nil || !bytes.Equal(dec, mustDecode(t, sig)) {
		t.Fatalf("test setup: non-canonical signature decodes to other bytes (%v)", err)
	}

	// A payload encoded with padding, correctly signed over that encoding.
	paddedPayload := base64.URLEncoding.EncodeToString([]byte(claimsJSON(map[string]any{"sub": "owner1"})))
	if !strings.HasSuffix(paddedPayload, "=") {
		t.Fatal("test setup: payload needs no padding; change its length")
	}
	paddedIn := parts[0] + "." + paddedPayload

	// A payload in the standard alphabet, correctly signed. '?' is 0x3F:
	// of three in a row one sits at a byte index ≡ 2 (mod 3), whose low six
	// bits make the character '/'.
	stdPayload := base64.RawStdEncoding.EncodeToString([]byte(claimsJSON(map[string]any{"sub": "owner???"})))
	if !strings.Contains(stdPayload, "/") {
		t.Fatalf("test setup: %s has no '/'", stdPayload)
	}
	stdIn := parts[0] + "." + stdPayload

	iat := t0.Truncate(time.Second).Unix()
	tests := []struct {
		name string
		tok  string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"three garbage segments", "a.b.c"},
		{"alg none", signWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)},
		{"alg none with the signature stripped from a valid token", b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."},
		{"alg None", craft(`{"alg":"None","typ":"JWT"}`, claimsJSON(nil), testKey)},
		{"no alg", craft(`{"typ":"JWT"}`, claimsJSON(nil), testKey)},
		{"HS384 with the right key", signWith(jwt.SigningMethodHS384, testKey)},
		{"HS512 with the right key", signWith(jwt.SigningMethodHS512, testKey)},
		{"RS256 header, HMAC of the key", craft(`{"alg":"RS256","typ":"JWT"}`, claimsJSON(nil), testKey)},
		{"ES256 header, HMAC of the key", craft(`{"alg":"ES256","typ":"JWT"}`, claimsJSON(nil), testKey)},
		{"hs256 in lower case", craft(`{"alg":"hs256","typ":"JWT"}`, claimsJSON(nil), testKey)},
		{"another key", craft(hs256Header, claimsJSON(nil), otherKey)},
		{"key prefix", craft(hs256Header, claimsJSON(nil), testKey[:31])},
		{"no exp", craft(hs256Header, claimsJSON(map[string]any{"exp": nil}), testKey)},
		{"exp not a number", craft(hs256Header, claimsJSON(map[string]any{"exp": "tomorrow"}), testKey)},
		{"expired", craft(hs256Header, claimsJSON(map[string]any{"exp": iat - 1}), testKey)},
		{"expired, exp as a numeric string", craft(hs256Header, claimsJSON(map[string]any{"exp": strconv.FormatInt(iat-1, 10)}), testKey)},
		{"exp a string of a non-integer word", craft(hs256Header, claimsJSON(map[string]any{"exp": "1e"}), testKey)},
		{"crit header", craft(`{"alg":"HS256","crit":["exp"]}`, claimsJSON(nil), testKey)},
		{"iat in the future", craft(hs256Header, claimsJSON(map[string]any{"iat": iat + 60}), testKey)},
		{"nbf in the future", craft(hs256Header, claimsJSON(map[string]any{"nbf": iat + 60}), testKey)},
		{"no iss", craft(hs256Header, claimsJSON(map[string]any{"iss": nil}), testKey)},
		{"wrong iss", craft(hs256Header, claimsJSON(map[string]any{"iss": "camd2"}), testKey)},
		{"iss in other case", craft(hs256Header, claimsJSON(map[string]any{"iss": "CAMD"}), testKey)},
		{"no aud", craft(hs256Header, claimsJSON(map[string]any{"aud": nil}), testKey)},
		{"wrong aud", craft(hs256Header, claimsJSON(map[string]any{"aud": []string{"other-api"}}), testKey)},
		{"empty aud", craft(hs256Header, claimsJSON(map[string]any{"aud": []string{}}), testKey)},
		{"no sub", craft(hs256Header, claimsJSON(map[string]any{"sub": nil}), testKey)},
		{"empty sub", craft(hs256Header, claimsJSON(map[string]any{"sub": ""}), testKey)},
		{"payload not JSON", func() string {
			in := parts[0] + "." + b64.EncodeToString([]byte("owner"))
			return in + "." + hs256(testKey, in)
		}()},
		{"truncated signature", valid[:len(valid)-1]},
		{"signature cut in half", valid[:len(valid)-len(sig)/2]},
		{"no signature", signingInput + "."},
		{"two segments", signingInput},
		{"extra segment", valid + ".x"},
		{"extra empty segment", valid + "."},
		{"signature padded", valid + "="},
		{"signature not canonical", signingInput + "." + nonCanonicalSig},
		{"payload padded, signed", paddedIn + "." + hs256(testKey, paddedIn)},
		{"payload in the standard alphabet, signed", stdIn + "." + hs256(testKey, stdIn)},
		{"leading space", " " + valid},
		{"trailing space", valid + " "},
		{"Bearer prefix", "Bearer " + valid},
		{"payload swapped from another token", parts[0] + "." + b64.EncodeToString([]byte(claimsJSON(map[string]any{"sub": "admin"}))) + "." + sig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := a.Verify(tt.tok)
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want an error wrapping ErrInvalid", claims, err)
			}
			if claims != nil {
				t.Errorf("claims %+v returned with an error", claims)
			}
		})
	}
	// The table's tokens are refused for the reason named, not by accident:
	// the unchanged token is accepted.
	if _, err := a.Verify(valid); err != nil {
		t.Fatalf("the valid token is refused: %v", err)
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.Strict().DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
