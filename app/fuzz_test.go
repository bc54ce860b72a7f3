package app_test

// Fuzz targets for the whole middleware chain, in-process through Handler()
// (no listener, so an input costs microseconds): the Authorization header on
// /api/ack and /admin, the bodies of POST /api/ack and POST /api/login, and
// the admin page's forms.
// `go test` replays the seeds below and testdata/fuzz; the long runs are
//
//	go test ./app -run '^$' -fuzz '^FuzzBearerChain$' -fuzztime 10m -parallel 1
//
// and the same for FuzzBasicAuth, FuzzAckBody, FuzzLoginBody and
// FuzzAdminForm.
//
// Every target checks: no panic, never a 5xx, every 4xx is a JSON object
// with an "error" string and a "code" whose status it is, and the route's success answer (or anything only
// an authenticated request can get) only with a credential that an oracle,
// written here independently of camd, finds valid.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"camd/apierr"
	"camd/app"
	"camd/platform/clients"
	"camd/platform/password"
	"camd/platform/secret"
)

// The fuzz data directory is provisioned with these, so that the seed
// tokens and credentials are valid on every run.
var (
	fuzzKey      = bytes.Repeat([]byte{0x6b}, 32)
	fuzzOtherKey = bytes.Repeat([]byte{0x6c}, 32)
	// fuzzIAT is in the past and fuzzEXP far in the future of the real
	// clock, which the fuzz app trusts (--clock system).
	fuzzIAT = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	fuzzEXP = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

const (
	fuzzPassword = "fuzz-owner-password"
	fuzzClient   = "porch"          // the one client in clients.json
	fuzzClientID = "fuzz-client-id" // its id, the jti of its tokens
)

// fuzzApp is camd provisioned in-process for one fuzz target.
type fuzzApp struct {
	h http.Handler
}

// newFuzzApp provisions camd in a fresh data directory holding a fixed
// secret, the hash of fuzzPassword (with the cheap parameters, so a password
// check costs well under a millisecond) and the client fuzzClient.
func newFuzzApp(tb testing.TB) *fuzzApp {
	tb.Helper()
	dir := fuzzDataDir(tb)
	hash, err := password.Hash(fuzzPassword, cheapHash)
	if err != nil {
		tb.Fatal(err)
	}
	cls, err := json.Marshal([]clients.Client{{Name: fuzzClient, ID: fuzzClientID, Scopes: []string{"ack"}, CreatedAt: time.Unix(fuzzIAT, 0).UTC()}})
	if err != nil {
		tb.Fatal(err)
	}
	for name, data := range map[string][]byte{
		secret.FileName:   fuzzKey,
		password.FileName: []byte(hash + "\n"),
		clients.FileName:  cls,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	a, err := app.New(defaultConfig(dir), app.Options{
		Registry:       standardRegistry(),
		PasswordParams: &cheapHash,
		Stderr:         io.Discard,
		Version:        "fuzz",
	})
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	tb.Cleanup(a.Close) // never served: release what the modules hold
	return &fuzzApp{h: a.Handler()}
}

// fuzzDataDir returns a fresh directory, on tmpfs where there is one: every
// 200 from POST /api/ack is fsynced first, which on a disk costs about 2 ms,
// most of an input's time.
func fuzzDataDir(tb testing.TB) string {
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "camd-fuzz-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// fuzzPeer numbers the client addresses. Each request comes from a fresh
// address, so the brute-force lockout never locks the fuzzer out and an
// input's answer does not depend on the inputs before it.
var fuzzPeer atomic.Uint32

// serve sends one request through the handler. A nil body is no body; an
// empty contentType sends no Content-Type.
func (fa *fuzzApp) serve(method, target string, body *string, contentType string, auth []string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(*body)
	}
	req := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != nil {
		req.Header["Authorization"] = auth
	}
	n := fuzzPeer.Add(1)
	req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", n>>16&0xff, n>>8&0xff, n&0xff)
	rec := httptest.NewRecorder()
	fa.h.ServeHTTP(rec, req)
	return rec
}

// fuzzCheckAnswer holds for every answer: no 5xx, and a 4xx is a JSON
// object with a non-empty "error" string and a "code" of camd's vocabulary
// whose status is the answer's.
func fuzzCheckAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("status %d: body is not a JSON object (%v): %q", rec.Code, err, rec.Body)
		}
		if msg, ok := body["error"].(string); !ok || msg == "" {
			t.Fatalf("status %d: no \"error\" string in %s", rec.Code, rec.Body)
		}
		code, _ := body["code"].(string)
		if !slices.Contains(apierr.Codes(), apierr.Code(code)) || apierr.Code(code).Status() != rec.Code {
			t.Fatalf("status %d: code %q is not camd's for it, in %s", rec.Code, code, rec.Body)
		}
	}
}

// fuzzSign signs claims with HS256 under key.
func fuzzSign(tb testing.TB, claims jwt.MapClaims, key []byte) string {
	tb.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// fuzzClaims returns valid owner claims with changes applied; a nil value
// deletes a claim.
func fuzzClaims(changes jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"iss": "camd", "aud": []string{"camd-api"}, "sub": "owner", "iat": fuzzIAT, "exp": fuzzEXP}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// fuzzOwnerToken is a valid owner token: the password was never changed, so
// owner tokens carry no pwv.
func fuzzOwnerToken(tb testing.TB) string { return fuzzSign(tb, fuzzClaims(nil), fuzzKey) }

// fuzzTokenClaims is the oracle's decoding of a token: golang-jwt's own
// claims types, not camd's.
type fuzzTokenClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
	PWV   string `json:"pwv"`
}

// fuzzBearer is the oracle for a bearer request. It returns the scopes the
// request's credential grants and whether it has a valid one at all: exactly
// one Authorization value, "Bearer" in any ASCII case, a space, then a token
// golang-jwt accepts under the app's key, pinned to HS256, with exp, iss and
// aud required and iat not in the future; its subject the owner (of the
// current password: no pwv) or the existing client with its id.
func fuzzBearer(values []string, now time.Time) (scopes []string, valid bool) {
	if len(values) != 1 {
		return nil, false
	}
	v := values[0]
	if len(v) < 8 || strings.ToLower(v[:6]) != "bearer" || v[6] != ' ' {
		return nil, false
	}
	var c fuzzTokenClaims
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer("camd"),
		jwt.WithAudience("camd-api"),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(strings.TrimLeft(v[7:], " "), &c, func(*jwt.Token) (any, error) { return fuzzKey, nil })
	switch {
	case err != nil:
		return nil, false
	case c.Subject == "owner" && c.PWV == "":
		return []string{"ack", "ack:read"}, true
	case c.Subject == "client:"+fuzzClient && c.ID == fuzzClientID:
		return strings.Fields(c.Scope), true
	}
	return nil, false
}

// FuzzBearerChain sends arbitrary Authorization values (none, one or two)
// to GET and POST /api/ack. Only a request the oracle finds valid may get
// past the bearer check (200, or 403 without the route's scope), and a valid
// one must; two headers are 400 invalid_request, anything else 401 with the
// RFC 6750 challenge.
func FuzzBearerChain(f *testing.F) {
	owner := fuzzOwnerToken(f)
	client := fuzzSign(f, fuzzClaims(jwt.MapClaims{"sub": "client:" + fuzzClient, "jti": fuzzClientID, "scope": "ack"}), fuzzKey)
	reader := fuzzSign(f, fuzzClaims(jwt.MapClaims{"sub": "client:" + fuzzClient, "jti": fuzzClientID, "scope": "ack:read"}), fuzzKey)
	tokens := []string{
		owner, client, reader,
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"sub": "client:" + fuzzClient, "jti": "revoked-id", "scope": "ack"}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"sub": "client:nobody", "jti": fuzzClientID}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"sub": "admin"}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"pwv": "old"}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"exp": fuzzIAT + 60}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"exp": nil}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"iat": fuzzEXP - 1}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"nbf": fuzzEXP - 1}), fuzzKey),
		fuzzSign(f, fuzzClaims(jwt.MapClaims{"aud": "other"}), fuzzKey),
		fuzzSign(f, fuzzClaims(nil), fuzzOtherKey),
		owner[:len(owner)-2],
		owner + ".x",
		"e30.e30.",
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, fuzzClaims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		f.Fatal(err)
	}
	tokens = append(tokens, none)
	for i, tok := range tokens {
		f.Add(i%2 == 0, uint8(1), "Bearer "+tok, "")
	}
	for _, s := range []struct {
		n    uint8
		a, b string
	}{
		{1, "bearer " + owner, ""},
		{1, "BEARER    " + owner, ""},
		{1, "Bearer\t" + owner, ""},
		{1, "Bearer " + owner + " ", ""},
		{1, " Bearer " + owner, ""},
		{1, "Bearer" + owner, ""},
		{1, "Bearer ", ""},
		{1, "Basic " + basic("owner", fuzzPassword), ""},
		{1, "Token " + owner, ""},
		{1, "", ""},
		{0, "", ""},
		{2, "Bearer " + owner, "Bearer " + owner},
		{2, "Bearer " + owner, ""},
		{2, "Bearer x", "Bearer " + owner},
	} {
		f.Add(false, s.n, s.a, s.b)
		f.Add(true, s.n, s.a, s.b)
	}

	fa := newFuzzApp(f)
	// One ack on record, so GET answers 200 to a valid token rather than 404.
	body := `{"count":1}`
	if rec := fa.serve(http.MethodPost, "/api/ack", &body, "application/json", []string{"Bearer " + owner}); rec.Code != http.StatusOK {
		f.Fatalf("setup ack: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, post bool, n uint8, a, b string) {
		values := [][]string{nil, {a}, {a, b}}[n%3]
		before := time.Now()
		var rec *httptest.ResponseRecorder
		need := "ack:read"
		if post {
			need = "ack"
			rec = fa.serve(http.MethodPost, "/api/ack", &body, "application/json", values)
		} else {
			rec = fa.serve(http.MethodGet, "/api/ack", nil, "", values)
		}
		fuzzCheckAnswer(t, rec)
		scopes, valid := fuzzBearer(values, before)
		if _, validAfter := fuzzBearer(values, time.Now()); validAfter != valid {
			return // the token expired (or matured) during the request
		}
		allowed := valid && (slices.Contains(scopes, need) || slices.Contains(scopes, "ack"))
		challenge := rec.Header().Get("WWW-Authenticate")
		switch {
		case rec.Code == http.StatusOK && !allowed:
			t.Fatalf("200 for Authorization %q (oracle: valid %v, scopes %q)", values, valid, scopes)
		case rec.Code == http.StatusForbidden && (!valid || allowed):
			t.Fatalf("403 for Authorization %q (oracle: valid %v, scopes %q)", values, valid, scopes)
		case allowed && rec.Code != http.StatusOK:
			t.Fatalf("%d %s for a valid credential %q", rec.Code, rec.Body, values)
		case valid && !allowed && rec.Code != http.StatusForbidden:
			t.Fatalf("%d %s for a valid credential without the scope %q", rec.Code, rec.Body, values)
		case !valid && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusBadRequest:
			t.Fatalf("%d %s without a valid credential %q", rec.Code, rec.Body, values)
		case rec.Code == http.StatusBadRequest && (len(values) < 2 || challenge != `Bearer realm="camd", error="invalid_request"`):
			t.Fatalf("400 (challenge %q) for Authorization %q; want it only for two headers", challenge, values)
		case len(values) > 1 && rec.Code != http.StatusBadRequest:
			t.Fatalf("%d for two Authorization headers %q, want 400", rec.Code, values)
		case rec.Code == http.StatusUnauthorized && !strings.HasPrefix(challenge, `Bearer realm="camd"`):
			t.Fatalf("401 with challenge %q", challenge)
		}
		// The code says why; the challenge's error stays invalid_token for
		// every refused token, and is absent when none was presented.
		if rec.Code == http.StatusUnauthorized {
			var e struct{ Code apierr.Code }
			_ = json.Unmarshal(rec.Body.Bytes(), &e) // fuzzCheckAnswer has checked it
			bare := challenge == `Bearer realm="camd"`
			switch {
			case e.Code == apierr.MissingToken && !bare:
				t.Fatalf("missing_token with challenge %q", challenge)
			case e.Code != apierr.MissingToken && !strings.HasPrefix(challenge, `Bearer realm="camd", error="invalid_token", error_description="`):
				t.Fatalf("%s with challenge %q", e.Code, challenge)
			}
		}
	})
}

// fuzzAdminRoutes are the Basic-auth routes the fuzzer tries, each with the
// answer it gives once authenticated. None changes state: the 404 and 415
// come after the Basic check and before any change.
var fuzzAdminRoutes = []struct {
	method, path string
	ok           int
}{
	{http.MethodGet, "/admin", http.StatusOK},
	{http.MethodGet, "/admin/status", http.StatusOK},
	{http.MethodGet, "/admin/clients", http.StatusOK},
	{http.MethodDelete, "/admin/clients/nobody", http.StatusNotFound},
	{http.MethodPost, "/admin/rotate-secret", http.StatusUnsupportedMediaType}, // no Content-Type
}

// fuzzBasic is the oracle for Basic auth: the credential is the first
// Authorization value, "Basic" in any ASCII case, a space, then base64 that
// decodes to exactly "owner:" and the owner's password. The decoding is
// encoding/base64's standard one, as Echo's, since the invariant is about
// what the decoded credential says.
func fuzzBasic(values []string) bool {
	// Two Authorization headers are ambiguous: refused with 400 whatever
	// either says, as on the bearer routes.
	if len(values) != 1 {
		return false
	}
	v := values[0]
	if len(v) < 7 || strings.ToLower(v[:5]) != "basic" || v[5] != ' ' {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(v[6:])
	return err == nil && string(dec) == "owner:"+fuzzPassword
}

// FuzzBasicAuth sends arbitrary Authorization values (none, one or two) to
// the admin routes. The authenticated answer comes exactly when the oracle
// finds the credential valid; otherwise 400 (undecodable, or two headers),
// 401 with the realm's challenge, 429 or 503.
func FuzzBasicAuth(f *testing.F) {
	good := basic("owner", fuzzPassword)
	for i, s := range []struct {
		n    uint8
		a, b string
	}{
		{1, "Basic " + good, ""},
		{1, "basic " + good, ""},
		{1, "BASIC " + good, ""},
		{1, "Basic  " + good, ""},
		{1, "Basic " + good + "\n", ""},
		{1, "Basic " + strings.TrimRight(good, "="), ""},
		{1, "Basic " + basic("owner", fuzzPassword+"x"), ""},
		{1, "Basic " + basic("Owner", fuzzPassword), ""},
		{1, "Basic " + basic("owner:"+fuzzPassword, ""), ""},
		{1, "Basic " + basic("", fuzzPassword), ""},
		{1, "Basic " + base64.StdEncoding.EncodeToString([]byte("owner"+fuzzPassword)), ""},
		{1, "Basic " + base64.URLEncoding.EncodeToString([]byte("owner:"+fuzzPassword+"?>")), ""},
		{1, "Basic " + basic("owner", strings.Repeat("x", 2000)), ""},
		{1, "Basic ", ""},
		{1, "Basic", ""},
		{1, "Basic !!!", ""},
		{1, "Bearer " + good, ""},
		{0, "", ""},
		{2, "Basic " + good, "Basic " + good},
		{2, "Basic x", "Basic " + good},
		{2, "Basic " + good, "Basic x"},
	} {
		f.Add(uint8(i), s.n, s.a, s.b)
	}
	fa := newFuzzApp(f)
	// The fixture works: the seeds' credential is the owner's.
	if rec := fa.serve(http.MethodGet, "/admin", nil, "", []string{"Basic " + good}); rec.Code != http.StatusOK {
		f.Fatalf("setup: GET /admin: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, route, n uint8, a, b string) {
		r := fuzzAdminRoutes[int(route)%len(fuzzAdminRoutes)]
		values := [][]string{nil, {a}, {a, b}}[n%3]
		rec := fa.serve(r.method, r.path, nil, "", values)
		fuzzCheckAnswer(t, rec)
		valid := fuzzBasic(values)
		switch {
		case valid && rec.Code != r.ok:
			t.Fatalf("%s %s: %d %s for a valid credential %q, want %d", r.method, r.path, rec.Code, rec.Body, values, r.ok)
		case !valid && rec.Code == r.ok:
			t.Fatalf("%s %s: %d without a valid credential %q", r.method, r.path, rec.Code, values)
		case len(values) > 1 && rec.Code != http.StatusBadRequest:
			t.Fatalf("%s %s: %d %s for two Authorization headers %q, want 400", r.method, r.path, rec.Code, rec.Body, values)
		case !valid && rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusTooManyRequests && rec.Code != http.StatusServiceUnavailable:
			t.Fatalf("%s %s: %d %s for %q, want 400, 401, 429 or 503", r.method, r.path, rec.Code, rec.Body, values)
		case rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != `Basic realm="Backyard cam admin"`:
			t.Fatalf("401 with challenge %q", rec.Header().Get("WWW-Authenticate"))
		}
	})
}

// fuzzJSONObject is the oracle's reading of a body that must be one JSON
// object: its members, and false for anything else, a key given twice
// included.
func fuzzJSONObject(body string) (map[string]json.RawMessage, bool) {
	if !json.Valid([]byte(body)) {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if _, dup := m[key]; dup {
			return nil, false
		}
		m[key] = v
	}
	return m, true
}

// fuzzJSONString decodes a member that must be a JSON string.
func fuzzJSONString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// fuzzIsJSON reports whether a Content-Type names application/json.
func fuzzIsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// fuzzBodyLimit is the 4 KiB limit on ack and login bodies.
const fuzzBodyLimit = 4 << 10

// fuzzCount matches a count camd must take: a plain JSON integer literal.
var fuzzCount = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// FuzzAckBody posts arbitrary bodies and Content-Types to /api/ack with a
// valid owner token. 413 over 4 KiB; 415 for a non-empty body that is not
// application/json; 200 exactly for one JSON object whose "count" is an
// integer literal from 0 to 2^53-1, with that count recorded; else 400.
func FuzzAckBody(f *testing.F) {
	for _, s := range []struct{ body, ct string }{
		{`{"count":3}`, "application/json"},
		{`{"count":0}`, "application/json; charset=utf-8"},
		{`{"count":9007199254740991}`, "APPLICATION/JSON"},
		{`{"count":9007199254740992}`, "application/json"},
		{`{"count":18446744073709551616}`, "application/json"},
		{`{"count":-1}`, "application/json"},
		{`{"count":-0}`, "application/json"},
		{`{"count":1.0}`, "application/json"},
		{`{"count":1e3}`, "application/json"},
		{`{"count":"3"}`, "application/json"},
		{`{"count":null}`, "application/json"},
		{`{"count":3,"count":4}`, "application/json"},
		{`{"count":3,"co\u0075nt":4}`, "application/json"},
		{`{"Count":3}`, "application/json"},
		{`{"count":3,"extra":[1,{"a":null}]}`, "application/json"},
		{` {"count" : 3} `, "application/json"},
		{`{"count":3}{}`, "application/json"},
		{`{"count":3`, "application/json"},
		{`[{"count":3}]`, "application/json"},
		{`{"count":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}`, "application/json"},
		{"", "application/json"},
		{"  \n", "application/json"},
		{"", ""},
		{`{"count":3}`, ""},
		{`{"count":3}`, "text/plain"},
		{`{"count":3}`, "application/x-www-form-urlencoded"},
		{`{"count":3}`, "application/json;"},
		{`{"count":3}`, "application/jsonx"},
		{"{\"count\":3,\"x\":\"\xff\"}", "application/json"},
		{`{"count":3,"pad":"` + strings.Repeat("x", fuzzBodyLimit) + `"}`, "application/json"},
	} {
		f.Add(s.body, s.ct)
	}
	fa := newFuzzApp(f)
	auth := []string{"Bearer " + fuzzOwnerToken(f)}
	f.Fuzz(func(t *testing.T, body, ct string) {
		rec := fa.serve(http.MethodPost, "/api/ack", &body, ct, auth)
		fuzzCheckAnswer(t, rec)
		var want int
		var count uint64
		switch obj, ok := fuzzJSONObject(body); {
		case len(body) > fuzzBodyLimit:
			want = http.StatusRequestEntityTooLarge
		case len(body) > 0 && !fuzzIsJSON(ct):
			want = http.StatusUnsupportedMediaType
		case ok && fuzzCount.Match(obj["count"]):
			n, err := strconv.ParseUint(string(obj["count"]), 10, 64)
			if err == nil && n <= 1<<53-1 {
				want, count = http.StatusOK, n
			} else {
				want = http.StatusBadRequest
			}
		default:
			want = http.StatusBadRequest
		}
		if rec.Code != want {
			t.Fatalf("body %q, Content-Type %q: %d %s, want %d", body, ct, rec.Code, rec.Body, want)
		}
		if want == http.StatusOK {
			var got struct {
				OK    bool   `json:"ok"`
				User  string `json:"user"`
				Count uint64 `json:"count"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || !got.OK || got.User != "owner" || got.Count != count {
				t.Fatalf("body %q: answer %s, want ok, owner and count %d", body, rec.Body, count)
			}
		}
	})
}

// FuzzLoginBody posts arbitrary bodies and Content-Types to /api/login.
// 200, with a token that verifies, exactly for one JSON object whose "user"
// is the string "owner" and whose "pass" is the owner's password; otherwise
// 413, 415, 400 or 401 (or 429) as for /api/ack.
func FuzzLoginBody(f *testing.F) {
	for _, s := range []struct{ body, ct string }{
		{`{"user":"owner","pass":"` + fuzzPassword + `"}`, "application/json"},
		{`{"pass":"` + fuzzPassword + `","user":"owner","x":1}`, "application/json; charset=utf-8"},
		{`{"user":"\u006fwner","pass":"` + fuzzPassword + `"}`, "application/json"},
		{`{"user":"owner","pass":"` + fuzzPassword + `"}`, ""},
		{`{"user":"owner","pass":"` + fuzzPassword + `"}`, "text/plain"},
		{`{"user":"owner","pass":"` + fuzzPassword + `x"}`, "application/json"},
		{`{"user":"Owner","pass":"` + fuzzPassword + `"}`, "application/json"},
		{`{"User":"owner","Pass":"` + fuzzPassword + `"}`, "application/json"},
		{`{"user":"owner","pass":"` + fuzzPassword + `","pass":"x"}`, "application/json"},
		{`{"user":"owner","pass":"x","pass":"` + fuzzPassword + `"}`, "application/json"},
		{`{"user":"owner","pass":null}`, "application/json"},
		{`{"user":"owner","pass":["` + fuzzPassword + `"]}`, "application/json"},
		{`{"user":"owner"}`, "application/json"},
		{`{"user":"owner","pass":"` + fuzzPassword + `"}x`, "application/json"},
		{`{"user":"owner","pass":"` + fuzzPassword + "\x00" + `"}`, "application/json"},
		{`{"user":"owner","pass":"` + strings.Repeat("p", 1100) + `"}`, "application/json"},
		{`{"user":"owner","pass":"` + strings.Repeat("p", fuzzBodyLimit) + `"}`, "application/json"},
		{"", "application/json"},
		{"", ""},
		{"null", "application/json"},
	} {
		f.Add(s.body, s.ct)
	}
	fa := newFuzzApp(f)
	// The fixture works: the first seed logs in.
	login := `{"user":"owner","pass":"` + fuzzPassword + `"}`
	if rec := fa.serve(http.MethodPost, "/api/login", &login, "application/json", nil); rec.Code != http.StatusOK {
		f.Fatalf("setup: login: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, body, ct string) {
		rec := fa.serve(http.MethodPost, "/api/login", &body, ct, nil)
		fuzzCheckAnswer(t, rec)
		obj, ok := fuzzJSONObject(body)
		user, userOK := fuzzJSONString(obj["user"])
		pass, passOK := fuzzJSONString(obj["pass"])
		switch {
		case len(body) > fuzzBodyLimit:
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d bytes: %d, want 413", len(body), rec.Code)
			}
		case len(body) > 0 && !fuzzIsJSON(ct):
			if rec.Code != http.StatusUnsupportedMediaType {
				t.Fatalf("Content-Type %q: %d, want 415", ct, rec.Code)
			}
		case ok && userOK && passOK && user == "owner" && pass == fuzzPassword:
			if rec.Code != http.StatusOK {
				t.Fatalf("right password in %q: %d %s, want 200", body, rec.Code, rec.Body)
			}
			fuzzCheckLogin(t, rec)
		case rec.Code == http.StatusOK:
			t.Fatalf("200 for body %q, Content-Type %q, without the right password", body, ct)
		case ok && userOK && passOK:
			if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusTooManyRequests {
				t.Fatalf("wrong credential %q: %d %s, want 401 or 429", body, rec.Code, rec.Body)
			}
		default:
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("body %q: %d %s, want 400", body, rec.Code, rec.Body)
			}
		}
	})
}

// fuzzCheckLogin checks a 200 from /api/login: an uncacheable owner token
// that verifies under the app's key and lives for the configured hour.
func fuzzCheckLogin(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login Cache-Control %q, want no-store", cc)
	}
	var got struct {
		Token     string `json:"token"`
		TokenType string `json:"token_type"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.TokenType != "Bearer" || got.ExpiresIn != 3600 {
		t.Fatalf("login answer %s (%v)", rec.Body, err)
	}
	scopes, valid := fuzzBearer([]string{"Bearer " + got.Token}, time.Now())
	if !valid || !slices.Contains(scopes, "ack") {
		t.Fatalf("login token %q does not verify as the owner's", got.Token)
	}
}

// fuzzFormRoutes are the admin page's form routes. Revoking names a client
// that does not exist, so that no input changes what the next one finds.
var fuzzFormRoutes = []string{
	"/admin/ui/clients",
	"/admin/ui/clients/nobody/revoke",
	"/admin/ui/rotate-secret",
	"/admin/ui/password",
}

// fuzzClientName is the oracle for a client name the create form accepts:
// the field with surrounding white space trimmed, then 1 to 64 of
// [A-Za-z0-9._-].
var fuzzClientName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// fuzzOrigin is camd's own origin in the fuzz requests: httptest's host,
// over plain HTTP.
const fuzzOrigin = "http://example.com"

// fuzzCSRF is the oracle for the CSRF check. The post must say it comes
// from fuzzOrigin: Sec-Fetch-Site, if sent, same-origin; Origin exactly
// fuzzOrigin, or with no Origin a Referer whose scheme and host are. And the
// body (not the query string) must carry field, the one the page's forms
// carry, as its first _csrf value, with tok, the camd_csrf cookie the page
// set, among the cookies (net/http parses the Cookie header). No other pair
// exists: only camd can sign a cookie, and only camd derives its field.
func fuzzCSRF(site, origin, referer, cookieHeader string, form url.Values, tok, field string) bool {
	if site != "" && site != "same-origin" {
		return false
	}
	switch {
	case origin != "":
		if origin != fuzzOrigin {
			return false
		}
	case referer != "":
		u, err := url.Parse(referer)
		if err != nil || u.Scheme+"://"+u.Host != fuzzOrigin {
			return false
		}
	default:
		return false
	}
	if form.Get("_csrf") != field {
		return false
	}
	r := http.Request{Header: http.Header{"Cookie": {cookieHeader}}}
	return slices.ContainsFunc(r.Cookies(), func(c *http.Cookie) bool { return c.Name == "camd_csrf" && c.Value == tok })
}

// fuzzPageToken gets the CSRF cookie the admin page sets and the field its
// forms carry, as a browser would.
func fuzzPageToken(tb testing.TB, fa *fuzzApp, basicAuth []string) (tok, field string) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "/admin", nil)
	req.Header.Set("Accept", "text/html")
	req.Header["Authorization"] = basicAuth
	rec := httptest.NewRecorder()
	fa.h.ServeHTTP(rec, req)
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(rec.Body.String())
	for _, c := range rec.Result().Cookies() {
		if c.Name == "camd_csrf" && c.Value != "" && m != nil && m[1] != c.Value {
			return c.Value, m[1]
		}
	}
	tb.Fatalf("setup: GET /admin: %d, no camd_csrf cookie and a _csrf field apart from it", rec.Code)
	return "", ""
}

// FuzzAdminForm posts arbitrary form bodies and query strings, with
// arbitrary Sec-Fetch-Site, Origin, Referer and CSRF cookies, to the admin
// page's forms, with the owner's Basic credentials. "$TOKEN" and "$FIELD" in
// the query, body or cookie stand for the cookie the page set and the field
// its forms carry. Refusals before
// the handler (413, 400 for an unreadable form, 403 CSRF) are JSON; the
// handler answers with a page. The oracles decide which: a forged form is
// always 403, a client is created only with a valid name and known scopes,
// the password changes only when confirmed and repeated, and only fields of
// the body count.
func FuzzAdminForm(f *testing.F) {
	const tokRef, fieldRef = "$TOKEN", "$FIELD"
	own, tokField, tokCookie := fuzzOrigin, "_csrf="+fieldRef, "camd_csrf="+tokRef
	for _, s := range []struct {
		route                                      uint8
		query, body, site, origin, referer, cookie string
	}{
		{0, "", "name=porch-phone&scopes=ack&" + tokField, "", own, "", tokCookie},
		{0, "", "name=porch-phone&scopes=ack&scopes=ack:read&" + tokField, "same-origin", own, "", tokCookie},
		{0, "", "name=porch-phone&" + tokField, "", "", own + "/admin?done=rotated", tokCookie},
		{0, "", "name=+spaced+&scopes=ack&" + tokField, "", own, "", tokCookie},
		{0, "", "name=bad name!&" + tokField, "", own, "", tokCookie},
		{0, "", "name=x&scopes=admin&" + tokField, "", own, "", tokCookie},
		{0, "", "name=porch&" + tokField, "", own, "", tokCookie},
		{0, "name=from-query", tokField, "", own, "", tokCookie},
		// Forgeries: no token, a planted pair, the token in the query
		// string, the wrong origin, or one a browser marks as foreign.
		{0, "", "name=porch-phone", "same-origin", own, "", ""},
		{0, "", "name=x&_csrf=tok", "", own, "", "camd_csrf=tok"},
		{0, "", "name=x&_csrf=tok", "", own, "", "camd_csrf=tok; " + tokCookie},
		{0, tokField, "name=x", "", own, "", tokCookie},
		{0, "", "name=x&" + tokField, "", "", "", tokCookie},
		{0, "", "name=x&" + tokField, "", "null", "", tokCookie},
		{0, "", "name=x&" + tokField, "", "http://example.com:8080", own + "/admin", tokCookie},
		{0, "", "name=x&" + tokField, "", "https://example.com", "", tokCookie},
		{0, "", "name=x&" + tokField, "", "", "http://example.com:8080/admin", tokCookie},
		{0, "", "name=x&" + tokField, "cross-site", own, "", tokCookie},
		{0, "", "name=x&" + tokField, "same-site", own, "", tokCookie},
		{0, "", "name=x&" + tokField, "none", own, "", tokCookie},
		{0, "", "name=x&_csrf=" + tokRef + "x", "", own, "", "camd_csrf=" + tokRef + "x"},
		// The cookie's value as the field: what a page on another port,
		// which receives the cookie, could send.
		{0, "", "name=x&_csrf=" + tokRef, "", own, "", tokCookie},
		{0, "", "name=x&_csrf=" + fieldRef, "", own, "", "camd_csrf=" + fieldRef},
		// Unreadable or oversized forms.
		{0, "", "name=%zz&" + tokField, "", own, "", tokCookie},
		{0, "", "name=a;b&" + tokField, "", own, "", tokCookie},
		{0, "a;b", "name=a&" + tokField, "", own, "", tokCookie},
		{0, "", "name=" + strings.Repeat("a", 4100), "", own, "", tokCookie},
		{1, "", tokField, "", own, "", tokCookie},
		{1, "", "", "same-origin", own, "", ""},
		{2, "", "confirm=yes&" + tokField, "", own, "", tokCookie},
		{2, "", "confirm=no&" + tokField, "", own, "", tokCookie},
		{2, "confirm=yes", tokField, "", own, "", tokCookie},
		{2, "", "confirm=yes&confirm=no&" + tokField, "", own, "", "camd_csrf=t; " + tokCookie},
		{3, "", "password=a+new+password&repeat=a+new+password&confirm=yes&" + tokField, "", own, "", tokCookie},
		{3, "", "password=a+new+password&repeat=another&confirm=yes&" + tokField, "", own, "", tokCookie},
		{3, "", "password=short&repeat=short&confirm=yes&" + tokField, "", own, "", tokCookie},
		{3, "", "password=a+new+password&repeat=a+new+password&" + tokField, "", own, "", tokCookie},
		{3, "confirm=yes", "password=a+new+password&repeat=a+new+password&" + tokField, "", own, "", tokCookie},
	} {
		f.Add(s.route, s.query, s.body, s.site, s.origin, s.referer, s.cookie)
	}
	fa := newFuzzApp(f)
	basicAuth := []string{"Basic " + basic("owner", fuzzPassword)}
	tok, field := fuzzPageToken(f, fa, basicAuth)
	refs := strings.NewReplacer(tokRef, tok, fieldRef, field)
	f.Fuzz(func(t *testing.T, route uint8, query, body, site, origin, referer, cookie string) {
		query, body, cookie = refs.Replace(query), refs.Replace(body), refs.Replace(cookie)
		path := fuzzFormRoutes[int(route)%len(fuzzFormRoutes)]
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header["Authorization"] = basicAuth
		for name, v := range map[string]string{"Sec-Fetch-Site": site, "Origin": origin, "Referer": referer, "Cookie": cookie} {
			if v != "" {
				req.Header.Set(name, v)
			}
		}
		n := fuzzPeer.Add(1)
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", n>>16&0xff, n>>8&0xff, n&0xff)
		rec := httptest.NewRecorder()
		fa.h.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Header().Get("Content-Security-Policy") == "" {
			t.Fatalf("status %d without a Content-Security-Policy", rec.Code)
		}
		page := strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html")
		if rec.Code >= 400 && !page {
			fuzzCheckAnswer(t, rec)
		}
		form, parseErr := url.ParseQuery(body)
		_, queryErr := url.ParseQuery(query)
		want := func(codes ...int) {
			t.Helper()
			if !slices.Contains(codes, rec.Code) {
				t.Fatalf("POST %s?%s %q (Sec-Fetch-Site %q, Origin %q, Referer %q, Cookie %q): %d %.300s, want one of %v",
					path, query, body, site, origin, referer, cookie, rec.Code, rec.Body, codes)
			}
		}
		switch {
		case len(body) > fuzzBodyLimit:
			want(http.StatusRequestEntityTooLarge)
			return
		case parseErr != nil || queryErr != nil:
			want(http.StatusBadRequest)
			return
		case !fuzzCSRF(site, origin, referer, cookie, form, tok, field):
			want(http.StatusForbidden)
			return
		}
		switch path {
		case "/admin/ui/clients":
			name := strings.TrimSpace(form.Get("name"))
			known := !slices.ContainsFunc(form["scopes"], func(s string) bool { return s != "ack" && s != "ack:read" })
			if !fuzzClientName.MatchString(name) || !known {
				want(http.StatusBadRequest)
				return
			}
			want(http.StatusCreated, http.StatusConflict)
			if rec.Code == http.StatusCreated {
				if !strings.Contains(rec.Body.String(), `<textarea id="token"`) || rec.Header().Get("Cache-Control") != "no-store" {
					t.Fatalf("created page without the token or no-store: %.300s", rec.Body)
				}
				// Keep clients.json small for the next inputs.
				if del := fa.serve(http.MethodDelete, "/admin/clients/"+name, nil, "", basicAuth); del.Code != http.StatusNoContent {
					t.Fatalf("delete %s: %d %s", name, del.Code, del.Body)
				}
			}
		case "/admin/ui/clients/nobody/revoke":
			want(http.StatusNotFound)
		case "/admin/ui/rotate-secret":
			if form.Get("confirm") == "yes" {
				want(http.StatusSeeOther)
			} else {
				want(http.StatusBadRequest)
			}
		case "/admin/ui/password":
			pw := form.Get("password")
			ok := form.Get("confirm") == "yes" && pw == form.Get("repeat") &&
				utf8.RuneCountInString(pw) >= 8 && len(pw) <= 1024
			if !ok {
				want(http.StatusBadRequest)
				return
			}
			want(http.StatusOK)
			// Put the owner's password back for the next inputs.
			back := `{"password":"` + fuzzPassword + `"}`
			if r := fa.serve(http.MethodPost, "/admin/password", &back, "application/json", []string{"Basic " + basic("owner", pw)}); r.Code != http.StatusNoContent {
				t.Fatalf("restore the password: %d %s", r.Code, r.Body)
			}
		}
	})
}
