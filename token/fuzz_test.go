package token

// Fuzz target for the token format in-process: Verify on arbitrary strings.
// (The Authorization value parsing of the Bearer middleware is fuzzed in
// camd/auth, where it lives.) `go test` replays the seeds below and
// testdata/fuzz; see SECURITY.md for the long runs, e.g.
//
//	go test ./token -run '^$' -fuzz '^FuzzVerify$' -fuzztime 10m -parallel 1

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"camd/platform/clock"
)

// The fuzz targets' fixtures: a fixed key and a fixed clock, so that the
// seed tokens Issue makes are the same bytes on every run.
var (
	fuzzKey      = bytes.Repeat([]byte{0x6b}, 32)
	fuzzOtherKey = bytes.Repeat([]byte{0x6c}, 32)
	fuzzNow      = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
)

func fuzzAuthority(tb testing.TB) *Authority {
	tb.Helper()
	a, err := NewAuthority(fuzzKey, DefaultTTL, clock.Func(func() time.Time { return fuzzNow }))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// fuzzClaims is the oracle's view of a token's claims: golang-jwt's own
// RegisteredClaims decoding, declared here rather than taken from
// token.Claims, plus camd's two private claims with the types camd gives
// them.
type fuzzClaims struct {
	jwt.RegisteredClaims
	Scope           string `json:"scope,omitempty"`
	PasswordVersion string `json:"pwv,omitempty"`
}

// fuzzOracle decides independently of Verify whether raw is a token camd
// must accept at now: it checks the JWS by hand (three segments, header alg
// HS256, HMAC-SHA256 of the first two segments under key) and the claims
// with golang-jwt's parser and options of its own. It returns the claims and
// nil when raw is valid, else the first reason it is not.
func fuzzOracle(raw string, key []byte, now time.Time) (*fuzzClaims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not three segments")
	}
	enc := base64.RawURLEncoding.Strict()
	hdrJSON, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("header is not base64url")
	}
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return nil, errors.New("header is not a JSON object")
	}
	if alg, _ := hdr["alg"].(string); alg != "HS256" {
		return nil, errors.New("alg is not HS256")
	}
	if _, ok := hdr["crit"]; ok {
		return nil, errors.New("crit: camd understands no extension (RFC 7515 4.1.11)")
	}
	// Date claims are judged by golang-jwt's NumericDate, as Verify judges
	// them: a numeric JSON string ("exp":"1700000000") is a date too. camd's
	// old hand-written decoder refused it (RFC 7519 section 2 says a
	// number); issue 14 replaced that decoder with golang-jwt's claim types
	// on purpose, and only a key holder can sign such a token.
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("signature is not base64url")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("HMAC-SHA256 does not match")
	}
	var c fuzzClaims
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer("camd"),
		jwt.WithAudience("camd-api"),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return nil, err
	}
	// Belt and braces over the parser's options: the claims that matter,
	// read directly.
	switch {
	case c.ExpiresAt == nil || !c.ExpiresAt.After(now):
		return nil, errors.New("exp missing or not in the future")
	case c.Issuer != "camd":
		return nil, errors.New("wrong iss")
	case !slices.Contains(c.Audience, "camd-api"):
		return nil, errors.New("aud lacks camd-api")
	case c.Subject == "":
		return nil, errors.New("no sub") // camd's own rule on top of RFC 7519
	}
	return &c, nil
}

// sameDate reports whether two optional dates are both absent or equal.
func sameDate(a, b *jwt.NumericDate) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(b.Time)
}

// fuzzVerifySeeds are tokens around the valid ones Issue makes: every row of
// RFC 8725's attacks that fits in one string, so the fuzzer starts next to
// the edges.
func fuzzVerifySeeds(tb testing.TB) []string {
	tb.Helper()
	a := fuzzAuthority(tb)
	must := func(s string, err error) string {
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	owner := must(a.IssueOwner(""))
	ownerV := must(a.IssueOwner("v1"))
	client := must(a.IssueClient("porch", "id-1", []string{"ack", "ack:read"}))
	plain := must(a.Issue("someone"))

	b64 := base64.RawURLEncoding
	craft := func(header, payload string, key []byte) string {
		in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + b64.EncodeToString(m.Sum(nil))
	}
	iat, exp := fuzzNow.Unix()-10, fuzzNow.Unix()+3600
	claims := func(extra string) string {
		return `{"iss":"camd","aud":["camd-api"],"sub":"owner","iat":` + strconv.FormatInt(iat, 10) + `,"exp":` + strconv.FormatInt(exp, 10) + extra + `}`
	}
	const hs = `{"alg":"HS256","typ":"JWT"}`
	parts := strings.Split(owner, ".")
	other := func(m jwt.SigningMethod, key any) string {
		tok, err := jwt.NewWithClaims(m, jwt.MapClaims{"iss": "camd", "aud": "camd-api", "sub": "owner", "iat": iat, "exp": exp}).SignedString(key)
		if err != nil {
			tb.Fatal(err)
		}
		return tok
	}
	return []string{
		owner, ownerV, client, plain,
		craft(hs, claims(""), fuzzKey),
		craft(`{"alg":"HS256"}`, `{"iss":"camd","aud":"camd-api","sub":"x","exp":`+strconv.FormatInt(exp, 10)+`}`, fuzzKey),
		craft(hs, `{"iss":"camd","aud":["a","camd-api"],"sub":"owner","exp":`+strconv.FormatInt(exp, 10)+`.5,"nbf":1}`, fuzzKey),
		craft(hs, claims(`,"scope":"ack","pwv":"v1","jti":"j"`), fuzzKey),
		craft(hs, `{"iss":"camd","aud":["camd-api"],"sub":"owner","exp":"`+strconv.FormatInt(exp, 10)+`"}`, fuzzKey), // valid: golang-jwt's NumericDate
		craft(hs, `{"iss":"camd","aud":["camd-api"],"sub":"owner","exp":1e300}`, fuzzKey),
		craft(hs, `{"iss":"camd","aud":["camd-api"],"sub":"owner","exp":`+strconv.FormatInt(exp, 10)+`,"iat":`+strconv.FormatInt(exp, 10)+`}`, fuzzKey),
		craft(hs, `{"iss":"camd","aud":["camd-api"],"sub":"owner"}`, fuzzKey),
		craft(hs, `{"iss":"camd","aud":["camd-api"],"sub":"owner","exp":`+strconv.FormatInt(iat, 10)+`}`, fuzzKey),
		craft(hs, `{"iss":"c\u0061md","aud":"camd-api","sub":"\u006fwner","exp":`+strconv.FormatInt(exp, 10)+`}`, fuzzKey),
		craft(hs, claims(""), fuzzOtherKey),
		craft(`{"alg":"none"}`, claims(""), fuzzKey),
		craft(`{"alg":"hs256"}`, claims(""), fuzzKey),
		craft(`{"alg":"RS256"}`, claims(""), fuzzKey),
		craft(`{"alg":"HS256","alg":"none"}`, claims(""), fuzzKey),
		craft(`{"alg":"HS256","crit":["exp"]}`, claims(""), fuzzKey),
		b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		other(jwt.SigningMethodHS384, fuzzKey),
		other(jwt.SigningMethodHS512, fuzzKey),
		other(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		owner[:len(owner)-1],
		owner + ".",
		owner + "=",
		parts[0] + "." + parts[1],
		" " + owner,
		"Bearer " + owner,
		"", ".", "..", "a.b.c", "e30.e30.", "\xff.\xfe.\xfd",
	}
}

// FuzzVerify: Verify never panics, refuses with an error wrapping ErrInvalid
// and no claims, and accepts exactly the tokens the independent oracle
// accepts, returning the claims the oracle decoded.
func FuzzVerify(f *testing.F) {
	a := fuzzAuthority(f)
	seeds := fuzzVerifySeeds(f)
	// The seeds start with valid tokens, so the fuzzer mutates from inside
	// the accepted set as well as from outside it. The ninth, exp as a
	// numeric string, is valid since Verify uses golang-jwt's NumericDate.
	for i, s := range seeds[:9] {
		if _, err := a.Verify(s); err != nil {
			f.Fatalf("seed %d is refused: %v", i, err)
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := a.Verify(raw)
		want, whyNot := fuzzOracle(raw, fuzzKey, fuzzNow)
		if err != nil {
			if got != nil {
				t.Fatalf("Verify returned claims %+v with error %v", got, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify error %v does not wrap ErrInvalid", err)
			}
			if whyNot == nil {
				t.Fatalf("Verify refused a valid token (%v): %q", err, raw)
			}
			return
		}
		if whyNot != nil {
			t.Fatalf("Verify accepted an invalid token (%v): %q", whyNot, raw)
		}
		if got.Subject != want.Subject || got.Issuer != want.Issuer || got.ID != want.ID ||
			got.Scope != want.Scope || got.PasswordVersion != want.PasswordVersion ||
			!slices.Equal(got.Audience, want.Audience) ||
			!sameDate(got.ExpiresAt, want.ExpiresAt) || !sameDate(got.IssuedAt, want.IssuedAt) || !sameDate(got.NotBefore, want.NotBefore) {
			t.Fatalf("Verify claims %+v, oracle decoded %+v, of %q", got, want, raw)
		}
	})
}
