package app_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"camd/apierr"
)

// The three Bearer challenges camd sends (RFC 6750 section 3), and the one
// for a scope it lacks. atkInvalid is followed by an error_description
// that is the JSON error's message: the attribute stays invalid_token for
// every refused token, the code tells them apart.
const (
	atkBare        = `Bearer realm="camd"`
	atkInvalid     = `Bearer realm="camd", error="invalid_token"`
	atkRequest     = `Bearer realm="camd", error="invalid_request"`
	atkNeedsAck    = `Bearer realm="camd", error="insufficient_scope", scope="ack"`
	atkNoChallenge = "" // no WWW-Authenticate at all
)

// atkMessages is the JSON error camd gives with each code. (Before codes,
// every refused token said "invalid or expired token".)
var atkMessages = map[apierr.Code]string{
	apierr.MissingToken:      "missing bearer token",
	apierr.InvalidRequest:    "more than one Authorization header",
	apierr.InsufficientScope: "token lacks scope ack",
	apierr.InvalidToken:      "invalid token",
	apierr.TokenExpired:      "the token has expired; log in again",
	apierr.SecretRotated:     "the token was signed with a signing secret since rotated",
	apierr.PasswordChanged:   "the owner password changed after the token was issued; log in again",
	// TokenRevoked names the client: checked by its prefix.
}

// atkRow is one attack: a raw HTTP/1.1 request to the real listener and the
// exact answer it must get.
type atkRow struct {
	name   string
	method string   // "POST" when empty
	target string   // "/api/ack" when empty
	lines  []string // raw header lines, written as they are
	ctype  string   // Content-Type; application/json when empty
	body   string   // {"count":N} when empty, N unique to the row
	status int
	// challenge is the exact WWW-Authenticate expected; "" means none.
	// For atkInvalid, the error_description after it is checked too.
	challenge string
	// code is the JSON error's code for a refusal. plain instead marks a
	// request net/http refuses itself before camd runs: its answer is
	// net/http's text/plain.
	code  apierr.Code
	plain bool
}

// atkAuth is an Authorization header line.
func atkAuth(value string) string { return "Authorization: " + value }

// atkFixture is the server and the credentials the rows are built from.
type atkFixture struct {
	s          *server
	addr       string
	oldKey     []byte // the secret before POST /admin/rotate-secret
	key        []byte // the secret now
	owner      string // a valid owner token: the control
	ownerPWV   string // its password version
	oldPWV     string // the version before POST /admin/password
	preRotate  string // an owner login token signed with oldKey
	prePasswd  string // an owner login token from before the password change
	oldClient  string // a client token signed with oldKey
	writer     string // a client token with scope ack
	reader     string // a client token with scope ack:read only
	revoked    string // a client token whose client was deleted
	readerJTI  string
	adminBasic string // "Authorization: Basic ..." with the current password
}

// TestTokenAttacks throws the attacks of RFC 8725 (JWT BCP) and RFC 6750
// (Bearer) at a real listening camd. Every row states the exact status and
// WWW-Authenticate; every refusal must be JSON and must not reach the
// handler. Malicious tokens are signed with the server's real secret, read
// from its data directory, so each is refused for the one reason it names.
func TestTokenAttacks(t *testing.T) {
	f := newAtkFixture(t)

	// A web server on loopback that counts fetches: a jku or x5u header
	// must never make camd fetch a key (RFC 8725 section 3.10).
	var fetches atomic.Int64
	keyHost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		http.Error(w, "no keys here", http.StatusNotFound)
	}))
	defer keyHost.Close()

	// An attacker's own key pairs, for genuine RS256/ES256 signatures and
	// for the classic "public key as HMAC secret" confusion.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	b64 := base64.RawURLEncoding
	rsaJWK := map[string]any{"kty": "RSA", "n": b64.EncodeToString(rsaKey.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(rsaKey.E)).Bytes())}
	ecJWK := map[string]any{"kty": "EC", "crv": "P-256",
		"x": b64.EncodeToString(ecKey.X.FillBytes(make([]byte, 32))),
		"y": b64.EncodeToString(ecKey.Y.FillBytes(make([]byte, 32)))}
	octJWK := map[string]any{"kty": "oct", "k": b64.EncodeToString([]byte("attacker-chosen-hmac-key-32bytes"))}

	now := time.Now().Unix()
	// claims returns the claims of a valid owner token now, with changes:
	// a nil value deletes the claim.
	claims := func(changes map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "camd", "aud": []string{"camd-api"}, "sub": "owner",
			"pwv": f.ownerPWV, "iat": now - 5, "exp": now + 3600}
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	// sign signs c with golang-jwt, then sets or (nil) deletes header
	// parameters: the alg written need not be the method that signed.
	sign := func(m jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		for k, v := range header {
			if v == nil {
				delete(tok.Header, k)
			} else {
				tok.Header[k] = v
			}
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatalf("sign %s: %v", m.Alg(), err)
		}
		return s
	}
	hs := func(header map[string]any, c jwt.MapClaims) string {
		return sign(jwt.SigningMethodHS256, f.key, header, c)
	}
	// raw signs header and payload bytes exactly as given, HS256 with the
	// real key, for JSON that a Go map cannot produce.
	raw := func(header, payload string) string {
		in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(in, f.key)
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + b64.EncodeToString(sig)
	}
	// hmacWith signs with any byte key, even an empty one golang-jwt refuses.
	hmacWith := func(key []byte, header map[string]any, c jwt.MapClaims) string {
		h, _ := json.Marshal(header)
		p, _ := json.Marshal(c)
		in := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + b64.EncodeToString(m.Sum(nil))
	}
	// none builds an unsigned token with the given alg and signature segment.
	none := func(alg, sig string) string {
		h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT"})
		p, _ := json.Marshal(claims(nil))
		return b64.EncodeToString(h) + "." + b64.EncodeToString(p) + "." + sig
	}

	valid := hs(nil, claims(nil)) // crafted like a login token: the baseline
	parts := strings.Split(valid, ".")
	hdr, pay, sig := parts[0], parts[1], parts[2]

	// A MAC's last base64url character has 2 unused bits; setting one keeps
	// the same bytes for a lenient decoder (signature malleability).
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanonical := sig[:len(sig)-1] + string(alphabet[strings.IndexByte(alphabet, sig[len(sig)-1])|1])

	// Huge tokens: MaxHeaderBytes is 8 KiB. The first, a well-formed JWT
	// signed with the old secret, stays under it with the rest of the
	// request (about 160 bytes); the second is far over it.
	nearLimit := sign(jwt.SigningMethodHS256, f.oldKey, nil, claims(map[string]any{"junk": strings.Repeat("A", 5600)}))
	if n := len(nearLimit); n < 7600 || n > 7900 {
		t.Fatalf("test setup: the near-limit token is %d bytes, want 7600 to 7900", n)
	}
	farOver := "eyJ" + strings.Repeat("A", 64<<10)

	const form = "application/x-www-form-urlencoded"
	rows := []atkRow{
		// Controls: the same route and request shape is served when the
		// credential is good, so every refusal below is for its own reason.
		{name: "control: owner login token", lines: []string{atkAuth("Bearer " + f.owner)}, status: 200},
		{name: "control: crafted owner token", lines: []string{atkAuth("Bearer " + valid)}, status: 200},
		{name: "control: client token with scope ack", lines: []string{atkAuth("Bearer " + f.writer)}, status: 200},
		{name: "control: ack:read client may read", method: "GET", lines: []string{atkAuth("Bearer " + f.reader)}, status: 200},

		// RFC 8725 3.1 and 3.2: the algorithm is pinned to HS256.
		{name: "alg none, no signature", lines: []string{atkAuth("Bearer " + none("none", ""))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg None, no signature", lines: []string{atkAuth("Bearer " + none("None", ""))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg NONE, no signature", lines: []string{atkAuth("Bearer " + none("NONE", ""))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg nOnE, no signature", lines: []string{atkAuth("Bearer " + none("nOnE", ""))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg none, HMAC-signed with the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "none"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg None, HMAC-signed with the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "None"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg NONE, HMAC-signed with the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "NONE"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg nOnE, HMAC-signed with the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "nOnE"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg none, signed by golang-jwt's none method", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg missing", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": nil}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg not a string", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": []string{"HS256"}}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "alg hs256 in lower case", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "hs256"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "HS384 with the right key", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodHS384, f.key, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "HS512 with the right key", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodHS512, f.key, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		// JSON keeps the lexically last duplicate (RFC 7515 section 4), so
		// a "none" hidden before HS256 is harmless, and one after is refused.
		{name: "duplicate alg, HS256 last", lines: []string{atkAuth("Bearer " + raw(`{"alg":"none","alg":"HS256"}`, atkJSON(t, claims(nil))))}, status: 200},
		{name: "duplicate alg, none last", lines: []string{atkAuth("Bearer " + raw(`{"alg":"HS256","alg":"none"}`, atkJSON(t, claims(nil))))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},

		// Key confusion (RFC 8725 3.1): public-key algorithms and keys named
		// by the token itself are never used.
		{name: "RS256 signed with the attacker's key", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodRS256, rsaKey, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "ES256 signed with the attacker's key", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodES256, ecKey, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "RS256 header, HMAC of the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "RS256"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "ES256 header, HMAC of the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"alg": "ES256"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "HS256 keyed with a public key PEM", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodHS256, rsaPEM, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "RS256 header keyed with a public key PEM", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodHS256, rsaPEM, map[string]any{"alg": "RS256"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "jwk header with the attacker's RSA key", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodRS256, rsaKey, map[string]any{"jwk": rsaJWK}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "jwk header with the attacker's EC key", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodES256, ecKey, map[string]any{"jwk": ecJWK}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "jwk header with the attacker's HMAC key", lines: []string{atkAuth("Bearer " + hmacWith([]byte("attacker-chosen-hmac-key-32bytes"), map[string]any{"alg": "HS256", "jwk": octJWK}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "jku header to the attacker's key set", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodRS256, rsaKey, map[string]any{"jku": keyHost.URL + "/jwks.json", "kid": "a"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "x5u header to the attacker's certificate", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodRS256, rsaKey, map[string]any{"x5u": keyHost.URL + "/cert.pem"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "jku header on an HS256 token keyed by the attacker", lines: []string{atkAuth("Bearer " + hmacWith([]byte("attacker-chosen-hmac-key-32bytes"), map[string]any{"alg": "HS256", "jku": keyHost.URL + "/jwks.json"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "kid path traversal to /dev/null, empty key", lines: []string{atkAuth("Bearer " + hmacWith(nil, map[string]any{"alg": "HS256", "kid": "../../../../../../dev/null"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "kid naming secret.bin, keyed by its name", lines: []string{atkAuth("Bearer " + hmacWith([]byte("secret.bin"), map[string]any{"alg": "HS256", "kid": "secret.bin"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "kid SQL injection, keyed by the injected value", lines: []string{atkAuth("Bearer " + hmacWith([]byte("k"), map[string]any{"alg": "HS256", "kid": "x' UNION SELECT 'k"}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		// RFC 7515 4.1.11: a JWS naming a critical extension the recipient
		// does not understand is invalid. camd understands none.
		{name: "crit naming an unknown extension", lines: []string{atkAuth("Bearer " + hs(map[string]any{"crit": []string{"x-camd-admin"}, "x-camd-admin": true}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "crit b64 false (RFC 7797 unencoded payload)", lines: []string{atkAuth("Bearer " + hs(map[string]any{"crit": []string{"b64"}, "b64": false}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "crit empty list", lines: []string{atkAuth("Bearer " + hs(map[string]any{"crit": []string{}}, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		// kid is only a hint (RFC 7515 4.1.4): camd has one key and ignores
		// it, so a genuine signature with any kid is still genuine.
		{name: "kid header, signed with the real secret", lines: []string{atkAuth("Bearer " + hs(map[string]any{"kid": "../../etc/passwd"}, claims(nil)))}, status: 200},

		// Lifetime (RFC 7519 4.1.4, 4.1.5, 4.1.6; RFC 8725 3.10).
		{name: "exp missing", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"exp": nil})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "exp null", lines: []string{atkAuth("Bearer " + raw(`{"alg":"HS256","typ":"JWT"}`, strings.Replace(atkJSON(t, claims(nil)), `"exp":`+strconv.FormatInt(now+3600, 10), `"exp":null`, 1)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "exp in the past", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"exp": now - 1})))}, status: 401, challenge: atkInvalid, code: apierr.TokenExpired},
		{name: "exp zero", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"exp": 0})))}, status: 401, challenge: atkInvalid, code: apierr.TokenExpired},
		{name: "exp as a word", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"exp": "tomorrow"})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		// A NumericDate is a JSON number (RFC 7519 section 2). golang-jwt's
		// own claim types, which camd now decodes with instead of a decoder
		// of its own, also read a number in a string: a behaviour change on
		// purpose, as only a holder of the key can sign one. Such a date is
		// still honoured: a past exp, a future nbf or iat is refused.
		{name: "exp as a numeric string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"exp": strconv.FormatInt(now+3600, 10)})))}, status: 200},
		{name: "exp as a past numeric string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"exp": strconv.FormatInt(now-1, 10)})))}, status: 401, challenge: atkInvalid, code: apierr.TokenExpired},
		{name: "nbf in the future", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"nbf": now + 600})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "nbf as a numeric string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"nbf": strconv.FormatInt(now-5, 10)})))}, status: 200},
		{name: "nbf as a future numeric string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"nbf": strconv.FormatInt(now+600, 10)})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iat far in the future", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iat": now + 10*365*24*3600, "exp": now + 11*365*24*3600})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iat a minute in the future", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iat": now + 60})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iat as a numeric string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iat": strconv.FormatInt(now-5, 10)})))}, status: 200},
		{name: "iat as a future numeric string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iat": strconv.FormatInt(now+600, 10)})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},

		// Issuer and audience (RFC 8725 3.8, 3.9).
		{name: "iss wrong", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iss": "evil"})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iss in upper case", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iss": "CAMD"})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iss missing", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iss": nil})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iss empty", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iss": ""})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "aud wrong", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"aud": []string{"other-api"}})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "aud the issuer's name", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"aud": "camd"})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "aud missing", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"aud": nil})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "aud empty list", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"aud": []string{}})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "iss and aud missing", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"iss": nil, "aud": nil})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		// RFC 7519 4.1.3 lets aud be one string, or a list that names us.
		{name: "aud as one string", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"aud": "camd-api"})))}, status: 200},
		{name: "aud among others", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"aud": []string{"other-api", "camd-api"}})))}, status: 200},

		// Subjects and the per-token checks camd runs after the signature.
		{name: "sub missing", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"sub": nil})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "sub unknown", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"sub": "admin"})))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "sub of a client that never existed", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"sub": "client:ghost", "jti": "x", "scope": "ack", "pwv": nil})))}, status: 401, challenge: atkInvalid, code: apierr.TokenRevoked},
		{name: "reader's jti under another client's name", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"sub": "client:writer", "jti": f.readerJTI, "scope": "ack", "pwv": nil})))}, status: 401, challenge: atkInvalid, code: apierr.TokenRevoked},
		{name: "owner token without pwv", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"pwv": nil})))}, status: 401, challenge: atkInvalid, code: apierr.PasswordChanged},
		{name: "owner token with the old pwv, real secret", lines: []string{atkAuth("Bearer " + hs(nil, claims(map[string]any{"pwv": f.oldPWV})))}, status: 401, challenge: atkInvalid, code: apierr.PasswordChanged},
		{name: "owner login token issued before a password change", lines: []string{atkAuth("Bearer " + f.prePasswd)}, status: 401, challenge: atkInvalid, code: apierr.PasswordChanged},
		{name: "revoked client token", lines: []string{atkAuth("Bearer " + f.revoked)}, status: 401, challenge: atkInvalid, code: apierr.TokenRevoked},
		{name: "client token without scope ack", lines: []string{atkAuth("Bearer " + f.reader)}, status: 403, challenge: atkNeedsAck, code: apierr.InsufficientScope},
		{name: "sub with a non-UTF-8 byte", lines: []string{atkAuth("Bearer " + raw(`{"alg":"HS256","typ":"JWT"}`, strings.Replace(atkJSON(t, claims(nil)), `"sub":"owner"`, "\"sub\":\"owner\xff\"", 1)))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "payload not JSON", lines: []string{atkAuth("Bearer " + raw(`{"alg":"HS256","typ":"JWT"}`, "\xff\xfe owner"))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "header not JSON", lines: []string{atkAuth("Bearer " + raw("\xff\xfeHS256", atkJSON(t, claims(nil))))}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},

		// The previous secret (rotated through POST /admin/rotate-secret).
		{name: "crafted token signed with the previous secret", lines: []string{atkAuth("Bearer " + sign(jwt.SigningMethodHS256, f.oldKey, nil, claims(nil)))}, status: 401, challenge: atkInvalid, code: apierr.SecretRotated},
		{name: "owner login token from before the rotation", lines: []string{atkAuth("Bearer " + f.preRotate)}, status: 401, challenge: atkInvalid, code: apierr.SecretRotated},
		{name: "client token from before the rotation", lines: []string{atkAuth("Bearer " + f.oldClient)}, status: 401, challenge: atkInvalid, code: apierr.SecretRotated},

		// Encoding and structure (RFC 7515 section 7.1, compact form only).
		{name: "signature truncated by one character", lines: []string{atkAuth("Bearer " + valid[:len(valid)-1])}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "signature truncated by half", lines: []string{atkAuth("Bearer " + valid[:len(valid)-len(sig)/2])}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "signature empty", lines: []string{atkAuth("Bearer " + hdr + "." + pay + ".")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "signature with non-canonical last character", lines: []string{atkAuth("Bearer " + hdr + "." + pay + "." + nonCanonical)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "signature padded", lines: []string{atkAuth("Bearer " + valid + "=")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "signature in the standard alphabet", lines: []string{atkAuth("Bearer " + hdr + "." + pay + "." + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "+/")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "two segments", lines: []string{atkAuth("Bearer " + hdr + "." + pay)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "four segments", lines: []string{atkAuth("Bearer " + valid + "." + sig)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "five segments, JWE-shaped", lines: []string{atkAuth("Bearer " + hdr + ".." + pay + "." + sig + ".AAAA")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "trailing dot", lines: []string{atkAuth("Bearer " + valid + ".")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "leading dot", lines: []string{atkAuth("Bearer ." + valid)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "all segments empty", lines: []string{atkAuth("Bearer ..")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "empty header segment", lines: []string{atkAuth("Bearer ." + pay + "." + sig)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "empty payload segment", lines: []string{atkAuth("Bearer " + hdr + ".." + sig)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "a lone dot", lines: []string{atkAuth("Bearer .")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},

		// The scheme (RFC 7235 2.1, RFC 6750 2.1): case-insensitive name,
		// 1*SP, then the token. Anything else is not a Bearer credential.
		{name: "scheme lower case", lines: []string{atkAuth("bearer " + f.owner)}, status: 200},
		{name: "scheme upper case", lines: []string{atkAuth("BEARER " + f.owner)}, status: 200},
		{name: "scheme mixed case", lines: []string{atkAuth("bEaReR " + f.owner)}, status: 200},
		{name: "two spaces after the scheme", lines: []string{atkAuth("Bearer  " + f.owner)}, status: 200},
		// OWS around a field value is not part of it (RFC 9110 5.5).
		{name: "leading and trailing spaces", lines: []string{"Authorization:   Bearer " + f.owner + "   "}, status: 200},
		{name: "leading and trailing tabs", lines: []string{"Authorization:\tBearer " + f.owner + "\t"}, status: 200},
		{name: "no space after the colon", lines: []string{"Authorization:Bearer " + f.owner}, status: 200},
		// RFC 9112 5.2 lets a server replace an obs-fold with one SP, which
		// net/http does; 5.1 makes it refuse space before the colon.
		{name: "scheme and token folded onto two lines", lines: []string{"Authorization: Bearer\r\n " + f.owner}, status: 200},
		{name: "space before the colon", lines: []string{"Authorization : Bearer " + f.owner}, status: 400, challenge: atkNoChallenge, plain: true},
		{name: "header name in lower case", lines: []string{"authorization: Bearer " + f.owner}, status: 200},
		{name: "tab after the scheme", lines: []string{atkAuth("Bearer\t" + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "no separator: Bearertoken", lines: []string{atkAuth("Bearer" + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "Bearer with no token", lines: []string{atkAuth("Bearer")}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "Bearer and spaces, no token", lines: []string{atkAuth("Bearer    ")}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "empty Authorization", lines: []string{"Authorization:"}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "Basic with the token", lines: []string{atkAuth("Basic " + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "Basic with the owner password", lines: []string{f.adminBasic}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "JWT scheme", lines: []string{atkAuth("JWT " + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "Token scheme", lines: []string{atkAuth("Token " + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "Bearer: with a colon", lines: []string{atkAuth("Bearer: " + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "no-break space after the scheme", lines: []string{atkAuth("Bearer\u00a0" + f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token only, no scheme", lines: []string{atkAuth(f.owner)}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token and something after it", lines: []string{atkAuth("Bearer " + f.owner + " x")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "Bearer twice", lines: []string{atkAuth("Bearer Bearer " + f.owner)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "token quoted", lines: []string{atkAuth(`Bearer "` + f.owner + `"`)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "auth-param form", lines: []string{atkAuth("Bearer access_token=" + f.owner)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "two credentials joined by a comma", lines: []string{atkAuth("Bearer " + f.owner + ", Bearer " + f.owner)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},

		// Authorization is not a list header (RFC 9110 5.3): two are
		// ambiguous, whatever they hold.
		{name: "two Authorization headers, both valid", lines: []string{atkAuth("Bearer " + f.owner), atkAuth("Bearer " + f.owner)}, status: 400, challenge: atkRequest, code: apierr.InvalidRequest},
		{name: "two Authorization headers, valid second", lines: []string{atkAuth("Bearer x"), atkAuth("Bearer " + f.owner)}, status: 400, challenge: atkRequest, code: apierr.InvalidRequest},
		{name: "two Authorization headers, different case", lines: []string{atkAuth("Bearer " + f.owner), "AUTHORIZATION: Bearer " + f.owner}, status: 400, challenge: atkRequest, code: apierr.InvalidRequest},
		{name: "Basic and Bearer headers", lines: []string{f.adminBasic, atkAuth("Bearer " + f.owner)}, status: 400, challenge: atkRequest, code: apierr.InvalidRequest},
		{name: "valid and empty headers", lines: []string{atkAuth("Bearer " + f.owner), "Authorization:"}, status: 400, challenge: atkRequest, code: apierr.InvalidRequest},

		// RFC 6750 2.2 and 2.3 are not supported, and a cookie is never a
		// credential: a request with the token only there has none (3.1).
		{name: "token in the query string", target: "/api/ack?access_token=" + f.owner, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token in the query string, GET", method: "GET", target: "/api/ack?access_token=" + f.owner, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token in a form body", ctype: form, body: "access_token=" + f.owner + "&count=1", status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token in an access_token cookie", lines: []string{"Cookie: access_token=" + f.owner}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token in an Authorization cookie", lines: []string{"Cookie: Authorization=Bearer%20" + f.owner}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "token in another header", lines: []string{"X-Access-Token: " + f.owner, "X-Authorization: Bearer " + f.owner}, status: 401, challenge: atkBare, code: apierr.MissingToken},
		{name: "bad header, valid token in the query", target: "/api/ack?access_token=" + f.owner, lines: []string{atkAuth("Bearer x")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		// The query is not a method camd supports, so it is not "more than
		// one method" (RFC 6750 3.1): a good header is served.
		{name: "valid header, junk token in the query", target: "/api/ack?access_token=x", lines: []string{atkAuth("Bearer " + f.owner)}, status: 200},

		// Size: under MaxHeaderBytes (8 KiB) a huge token is parsed and
		// refused; far over it net/http answers 431 before camd runs.
		{name: "huge token just under the header limit", lines: []string{atkAuth("Bearer " + nearLimit)}, status: 401, challenge: atkInvalid, code: apierr.SecretRotated},
		{name: "huge token far over the header limit", lines: []string{atkAuth("Bearer " + farOver)}, status: 431, challenge: atkNoChallenge, plain: true},

		// Bytes that are not a token: obs-text is legal in a field value
		// (RFC 9110 5.5) and reaches camd; other control bytes do not.
		{name: "non-UTF-8 bytes in the token", lines: []string{atkAuth("Bearer " + valid + "\xff\xfe")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "token of non-UTF-8 bytes only", lines: []string{atkAuth("Bearer \xc3\x28\xa0\xa1\xe2\x28\xa1")}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "non-UTF-8 byte in place of a dot", lines: []string{atkAuth("Bearer " + hdr + "\xae" + pay + "." + sig)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "UTF-8 lookalike dot", lines: []string{atkAuth("Bearer " + hdr + "\u2024" + pay + "." + sig)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "tab inside the token", lines: []string{atkAuth("Bearer " + hdr + "\t." + pay + "." + sig)}, status: 401, challenge: atkInvalid, code: apierr.InvalidToken},
		{name: "NUL in the token", lines: []string{atkAuth("Bearer " + hdr + "\x00." + pay + "." + sig)}, status: 400, challenge: atkNoChallenge, plain: true},
		{name: "control byte 0x01 in the token", lines: []string{atkAuth("Bearer " + valid + "\x01")}, status: 400, challenge: atkNoChallenge, plain: true},
		{name: "ESC in the token", lines: []string{atkAuth("Bearer \x1b[2J" + valid)}, status: 400, challenge: atkNoChallenge, plain: true},
		{name: "DEL in the token", lines: []string{atkAuth("Bearer " + valid + "\x7f")}, status: 400, challenge: atkNoChallenge, plain: true},
		{name: "bare CR in the token", lines: []string{atkAuth("Bearer " + hdr + "\r." + pay + "." + sig)}, status: 400, challenge: atkNoChallenge, plain: true},
	}

	for i, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			count := 1000 + i // unique per row: shows whether its ack was recorded
			r := atkDo(t, f.addr, tc, count)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d; WWW-Authenticate %q; body %.200q", r.Status, tc.status, r.Header.Values("WWW-Authenticate"), r.Body)
			}
			got := r.Header.Values("WWW-Authenticate")
			if tc.status == http.StatusOK {
				if len(got) != 0 {
					t.Errorf("WWW-Authenticate %q on a 200", got)
				}
				return
			}
			if tc.plain {
				// net/http's own 400 and 431, before camd runs: its
				// text/plain, over HTTP as over HTTPS (camd no longer
				// rewrites them as JSON on plain HTTP only).
				if len(got) != 0 {
					t.Errorf("WWW-Authenticate %q, want none", got)
				}
				checkPlain(t, rawAnswer{r.Status, r.Header, []byte(r.Body), r.Close})
				return
			}
			// Every refusal of camd's is JSON with the row's code.
			body := checkError(t, r.response, tc.code)
			msg, _ := body["error"].(string)
			want, ok := atkMessages[tc.code]
			switch {
			case tc.code == apierr.TokenRevoked:
				if !strings.HasPrefix(msg, "the client ") || !strings.HasSuffix(msg, " was revoked or replaced") {
					t.Errorf("message %q, want the client's name, revoked or replaced", msg)
				}
			case !ok || msg != want:
				t.Errorf(`body %s, want {"error":%q}`, r.Body, want)
			}
			wantChallenge := tc.challenge
			if tc.challenge == atkInvalid {
				wantChallenge += `, error_description="` + msg + `"`
			}
			if len(got) != 1 || got[0] != wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, wantChallenge)
			}
			// The handler never ran: the last ack is not this row's.
			if last := do(t, "GET", f.s.URL+"/api/ack", "", "Authorization: Bearer "+f.owner); strings.Contains(last.Body, `"count":`+strconv.Itoa(count)+`,`) {
				t.Errorf("a refused request recorded its ack: %s", last.Body)
			}
		})
	}

	// camd never fetched a key from a URL a token named.
	if n := fetches.Load(); n != 0 {
		t.Errorf("camd fetched %d URLs named by jku/x5u headers", n)
	}
	// Still serving, and still honouring the control.
	if r := do(t, "GET", f.s.URL+"/api/ack", "", "Authorization: Bearer "+f.owner); r.Status != http.StatusOK {
		t.Errorf("after the attacks: %d %s", r.Status, r.Body)
	}
}

// newAtkFixture starts camd and walks it through a rotation, a password
// change and client revocation, keeping a token from before each.
func newAtkFixture(t *testing.T) *atkFixture {
	t.Helper()
	s := startServer(t, "", serverOpts{})
	f := &atkFixture{s: s, addr: strings.TrimPrefix(s.URL, "http://")}
	f.adminBasic = "Authorization: Basic " + basic("owner", s.Password)
	admin := func(method, path, body string, want int) map[string]any {
		t.Helper()
		r := do(t, method, s.URL+path, body, jsonCT, f.adminBasic)
		if r.Status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
		}
		if r.Body == "" {
			return nil
		}
		return r.JSON(t)
	}
	newClient := func(name, scope string) string {
		tok, _ := admin("POST", "/admin/clients", `{"name":"`+name+`","scopes":["`+scope+`"]}`, http.StatusCreated)["token"].(string)
		if tok == "" {
			t.Fatalf("no token for client %s", name)
		}
		return tok
	}

	f.oldKey = atkSecret(t, s.DataDir)
	f.preRotate = login(t, s)
	f.oldClient = newClient("old-cam", "ack")
	admin("POST", "/admin/rotate-secret", "{}", http.StatusOK)
	f.key = atkSecret(t, s.DataDir)
	if bytes.Equal(f.key, f.oldKey) {
		t.Fatal("rotate-secret left secret.bin unchanged")
	}

	f.prePasswd = login(t, s)
	f.oldPWV = atkClaim(t, f.prePasswd, "pwv")
	const newPassword = "attack-suite password"
	admin("POST", "/admin/password", `{"password":"`+newPassword+`"}`, http.StatusNoContent)
	s.Password = newPassword
	f.adminBasic = "Authorization: Basic " + basic("owner", newPassword)
	f.owner = login(t, s)
	f.ownerPWV = atkClaim(t, f.owner, "pwv")
	if f.ownerPWV == f.oldPWV {
		t.Fatal("the password change kept the password version")
	}

	f.writer = newClient("writer", "ack")
	f.reader = newClient("reader", "ack:read")
	f.readerJTI = atkClaim(t, f.reader, "jti")
	f.revoked = newClient("gone", "ack")
	admin("DELETE", "/admin/clients/gone", "", http.StatusNoContent)
	return f
}

// atkSecret reads the signing secret the server uses from its data dir.
func atkSecret(t *testing.T, dataDir string) []byte {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dataDir, "secret.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Fatalf("secret.bin is %d bytes", len(key))
	}
	return key
}

// atkClaim returns a string claim of a token, unverified.
func atkClaim(t *testing.T, tok, name string) string {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	v, _ := c[name].(string)
	return v
}

func atkJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// atkDo sends tc as raw bytes on a fresh loopback connection, so header
// lines reach the server exactly as written (net/http's client would
// refuse or clean many of them), and reads the answer.
func atkDo(t *testing.T, addr string, tc atkRow, count int) atkAnswer {
	t.Helper()
	method, target, ctype, body := tc.method, tc.target, tc.ctype, tc.body
	if method == "" {
		method = "POST"
	}
	if target == "" {
		target = "/api/ack"
	}
	if ctype == "" {
		ctype = "application/json"
	}
	if body == "" && method == "POST" {
		body = `{"count":` + strconv.Itoa(count) + `}`
	}
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for _, l := range tc.lines {
		req.WriteString(l + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&req, "Content-Type: %s\r\nContent-Length: %d\r\n", ctype, len(body))
	}
	req.WriteString("\r\n" + body)

	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Written from a goroutine: the server may answer (431) and stop
	// reading before a huge request is all sent.
	go func() { _, _ = io.WriteString(conn, req.String()) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return atkAnswer{response{Status: res.StatusCode, Header: res.Header, Body: string(b)}, res.Close}
}

// atkAnswer is an answer to an attack, and whether the server closed the
// connection after it.
type atkAnswer struct {
	response
	Close bool
}
