package app_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"camd/apierr"
	"camd/config"
	"camd/platform/secret"
)

// The admin page's tests: content negotiation on GET /admin, the page's
// headers and what it must never show, and its forms under /admin/ui with
// their CSRF check, driven the way a browser drives them.

const (
	formCT     = "Content-Type: application/x-www-form-urlencoded"
	chromeHTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	htmlCT     = "text/html; charset=UTF-8"
	csrfCookie = "camd_csrf"
	// pageCSP is contentSecurityPolicy in modules/admin/page.go, spelled
	// out here so that loosening it (a script-src, 'unsafe-inline') fails
	// a test instead of passing silently.
	pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

var (
	csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)
	tokenRE     = regexp.MustCompile(`<textarea id="token"[^>]*>([^<]*)</textarea>`)
	pairingRE   = regexp.MustCompile(`<pre id="pairing">([^<]*)</pre>`)
	qrRE        = regexp.MustCompile(`<img id="qr" src="([^"]*)"`)
	noticeRE    = regexp.MustCompile(`<p id="notice"[^>]*>([^<]*)</p>`)
)

func ownerBasic(pw string) string { return "Authorization: Basic " + basic("owner", pw) }

// browserClient keeps cookies like a browser but does not follow redirects,
// so a test sees the 303 and its Location itself.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: noFollow}
}

func noFollow(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// submatch returns re's first group in body, HTML-unescaped.
func submatch(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

// cookie returns the cookie an answer sets under name, parsed as net/http
// parses Set-Cookie.
func cookie(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// pageCSRF returns the _csrf value the page's forms carry; every form must
// carry the same one.
func pageCSRF(t *testing.T, body string) string {
	t.Helper()
	var vals []string
	for _, m := range csrfFieldRE.FindAllStringSubmatch(body, -1) {
		vals = append(vals, html.UnescapeString(m[1]))
	}
	if len(vals) == 0 || vals[0] == "" {
		t.Fatalf("no _csrf field on the page:\n%s", body)
	}
	if len(slices.Compact(slices.Clone(vals))) != 1 {
		t.Errorf("the page's forms carry different _csrf values: %q", vals)
	}
	return vals[0]
}

// clientNames lists the clients through the JSON admin API.
func clientNames(t *testing.T, s *server, pw string) []string {
	t.Helper()
	r := do(t, "GET", s.URL+"/admin/clients", "", ownerBasic(pw))
	if r.Status != http.StatusOK {
		t.Fatalf("list clients: %d %s", r.Status, r.Body)
	}
	var list []struct{ Name string }
	if err := json.Unmarshal([]byte(r.Body), &list); err != nil {
		t.Fatalf("list clients: %v: %s", err, r.Body)
	}
	names := []string{}
	for _, c := range list {
		names = append(names, c.Name)
	}
	return names
}

// ackWith posts an ack with a bearer token and returns the answer.
func ackWith(t *testing.T, s *server, tok string, count int) response {
	t.Helper()
	body, _ := json.Marshal(map[string]int{"count": count})
	return do(t, "POST", s.URL+"/api/ack", string(body), jsonCT, "Authorization: Bearer "+tok)
}

func readSecret(t *testing.T, s *server) []byte {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(s.DataDir, secret.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestAdminNegotiation: only an Accept that names text/html with a non-zero
// q gets the page; curl's */*, none, or JSON keep the plain greeting the API
// has always answered. Both vary on Accept, so no cache mixes them up.
func TestAdminNegotiation(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	tests := []struct {
		accept string // "" sends no Accept
		page   bool
	}{
		{"", false},
		{"*/*", false},
		{"text/*", false},
		{"application/json", false},
		{chromeHTML, true},
		{"text/html", true},
		{"TEXT/HTML", true},
		{"text/html;q=0", false},
		{"text/html;q=0.5, text/plain", true},
	}
	for _, tc := range tests {
		t.Run("Accept "+tc.accept, func(t *testing.T) {
			headers := []string{ownerBasic(s.Password)}
			if tc.accept != "" {
				headers = append(headers, "Accept: "+tc.accept)
			}
			r := do(t, "GET", s.URL+"/admin", "", headers...)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d %s", r.Status, r.Body)
			}
			if !slices.Contains(r.Header.Values("Vary"), "Accept") {
				t.Errorf("Vary %q, want Accept among them", r.Header.Values("Vary"))
			}
			ct := r.Header.Get("Content-Type")
			switch {
			case tc.page && (ct != htmlCT || !strings.Contains(r.Body, `id="greeting">hi owner<`)):
				t.Errorf("got %q %.80q, want the HTML page", ct, r.Body)
			case !tc.page && (ct != "text/plain; charset=UTF-8" || r.Body != "hi owner"):
				t.Errorf("got %q %.80q, want text/plain %q", ct, r.Body, "hi owner")
			}
		})
	}
	// The page is no way around the password.
	for _, accept := range []string{"*/*", chromeHTML} {
		t.Run("no credentials, Accept "+accept, func(t *testing.T) {
			r := do(t, "GET", s.URL+"/admin", "", "Accept: "+accept)
			if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != `Basic realm="Backyard cam admin"` {
				t.Errorf("got %d, WWW-Authenticate %q", r.Status, r.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(r.Body, "<") {
				t.Errorf("the refusal carries markup: %s", r.Body)
			}
		})
	}
}

// TestAdminPageHeaders: the page runs no script, cannot be framed or
// cached, sets a CSRF cookie no script or other site can use, and shows
// the secret's fingerprint but never the secret or the password.
func TestAdminPageHeaders(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	r := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password), "Accept: "+chromeHTML)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != htmlCT {
		t.Fatalf("got %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	for name, want := range map[string]string{
		"Content-Security-Policy": pageCSP,
		"X-Frame-Options":         "DENY",
		// same-origin, not the app's no-referrer: with that, a browser
		// sends "Origin: null" with the page's own posts.
		"Referrer-Policy":        "same-origin",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want exactly %q", name, got, want)
		}
	}
	c := cookie(r.Header, csrfCookie)
	switch {
	case c == nil:
		t.Fatalf("no %s cookie; Set-Cookie %q", csrfCookie, r.Header.Values("Set-Cookie"))
	case !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin" || c.Secure:
		t.Errorf("cookie %q: want HttpOnly, SameSite=Strict, Path=/admin, not Secure over plain HTTP", c.String())
	}
	// The field is a MAC of the cookie, never the cookie itself: a page
	// on another port of the host receives the cookie too.
	if got := pageCSRF(t, r.Body); got == c.Value || len(got) != 43 {
		t.Errorf("the forms carry _csrf %q with the cookie %q: want a 43-character MAC, not the cookie", got, c.Value)
	}

	key := readSecret(t, s)
	fp := secret.Fingerprint(key)
	for _, want := range []string{`id="greeting">hi owner<`, "<dd>test</dd>", `<meta name="referrer" content="same-origin">`, `id="secret-fingerprint" class="fp">` + fp + "<"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for what, leak := range map[string]string{
		"<script":                  "<script",
		"a style attribute":        " style=",
		"the secret in hex":        hex.EncodeToString(key),
		"the secret in HEX":        strings.ToUpper(hex.EncodeToString(key)),
		"the secret in base64":     base64.StdEncoding.EncodeToString(key),
		"the secret in base64url":  base64.RawURLEncoding.EncodeToString(key),
		"the owner password":       s.Password,
		"the owner password, HTML": html.EscapeString(s.Password),
		"the Basic credentials":    basic("owner", s.Password),
	} {
		if strings.Contains(r.Body, leak) {
			t.Errorf("the page contains %s", what)
		}
	}
}

// TestAdminForms drives every form the way Chromium does on a cam served
// over plain HTTP on the LAN, without Sec-Fetch-Site but with Origin: the
// CSRF token from the page and its cookie ride along, and each step's effect
// is checked through the JSON API and the tokens.
func TestAdminForms(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	browser := browserClient(t)
	page := doWith(t, browser, "GET", s.URL+"/admin", "", ownerBasic(s.Password), "Accept: "+chromeHTML)
	if page.Status != http.StatusOK {
		t.Fatalf("GET /admin: %d %s", page.Status, page.Body)
	}
	csrf := pageCSRF(t, page.Body)
	owner := login(t, s) // must die with the rotation below, not before
	const newPassword = "a new owner password"
	var clientToken string

	tests := []struct {
		name     string
		path     string
		form     url.Values
		status   int
		location string   // of a 303
		body     []string // in an HTML answer
		check    func(t *testing.T, r response)
	}{
		{
			name: "create", path: "/admin/ui/clients", status: http.StatusCreated,
			form: url.Values{"name": {"porch-phone"}, "scopes": {"ack", "ack:read"}},
			body: []string{`id="token"`, "Client porch-phone created"},
			check: func(t *testing.T, r response) {
				if got := r.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control %q, want no-store: the page shows a token", got)
				}
				clientToken = submatch(t, tokenRE, r.Body)
				if a := ackWith(t, s, clientToken, 1); a.Status != http.StatusOK || a.JSON(t)["user"] != "client:porch-phone" {
					t.Errorf("ack with the new token: %d %s", a.Status, a.Body)
				}
				var payload map[string]any
				if err := json.Unmarshal([]byte(submatch(t, pairingRE, r.Body)), &payload); err != nil {
					t.Fatalf("#pairing is not JSON: %v", err)
				}
				want := map[string]any{ // no tls_sha256 over plain HTTP
					"type": "camd-pairing", "v": float64(1), "url": s.URL, "client": "porch-phone",
					"scopes": []any{"ack", "ack:read"}, "token": clientToken,
				}
				if !reflect.DeepEqual(payload, want) {
					t.Errorf("pairing payload %v\nwant %v", payload, want)
				}
				// Only that it is a PNG; the browser test scans it.
				src := submatch(t, qrRE, r.Body)
				b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
				if !ok {
					t.Fatalf("#qr src %.40q, want a data:image/png URI", src)
				}
				raw, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatalf("#qr base64: %v", err)
				}
				if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
					t.Errorf("#qr is not a PNG: %v", err)
				}
			},
		},
		{
			name: "create a duplicate", path: "/admin/ui/clients", status: http.StatusConflict,
			form: url.Values{"name": {"porch-phone"}, "scopes": {"ack"}},
			body: []string{`id="error"`, "A client named porch-phone exists"},
		},
		{
			name: "create with a bad name", path: "/admin/ui/clients", status: http.StatusBadRequest,
			form: url.Values{"name": {"bad name!"}, "scopes": {"ack"}},
			body: []string{`id="error"`, "client name must be", `value="bad name!"`},
		},
		{
			name: "create with an unknown scope", path: "/admin/ui/clients", status: http.StatusBadRequest,
			form: url.Values{"name": {"gate"}, "scopes": {"admin"}},
			body: []string{`id="error"`, "unknown scope"},
			check: func(t *testing.T, _ response) {
				if got := clientNames(t, s, s.Password); !slices.Equal(got, []string{"porch-phone"}) {
					t.Errorf("clients %q, want only porch-phone: a refused form created one", got)
				}
			},
		},
		{
			name: "revoke", path: "/admin/ui/clients/porch-phone/revoke", status: http.StatusSeeOther,
			location: "/admin?client=porch-phone&done=revoked",
			check: func(t *testing.T, _ response) {
				if a := ackWith(t, s, clientToken, 2); a.Status != http.StatusUnauthorized {
					t.Errorf("ack with the revoked token: %d %s", a.Status, a.Body)
				}
				if got := clientNames(t, s, s.Password); len(got) != 0 {
					t.Errorf("clients %q after the revoke, want none", got)
				}
			},
		},
		{
			name: "revoke an unknown client", path: "/admin/ui/clients/nobody/revoke", status: http.StatusNotFound,
			body: []string{`id="error"`, "There is no client named nobody."},
		},
		{
			name: "rotate without the confirmation", path: "/admin/ui/rotate-secret", status: http.StatusBadRequest,
			body: []string{`id="error"`, "Tick the box"},
			check: func(t *testing.T, _ response) {
				if a := ackWith(t, s, owner, 3); a.Status != http.StatusOK {
					t.Errorf("owner token after an unconfirmed rotation: %d %s", a.Status, a.Body)
				}
			},
		},
		{
			name: "rotate", path: "/admin/ui/rotate-secret", status: http.StatusSeeOther,
			form: url.Values{"confirm": {"yes"}}, location: "/admin?done=rotated",
			check: func(t *testing.T, _ response) {
				if a := ackWith(t, s, owner, 4); a.Status != http.StatusUnauthorized {
					t.Errorf("owner token from before the rotation: %d %s", a.Status, a.Body)
				}
			},
		},
		{
			name: "password with a differing repeat", path: "/admin/ui/password", status: http.StatusBadRequest,
			form: url.Values{"password": {newPassword}, "repeat": {newPassword + "!"}, "confirm": {"yes"}},
			body: []string{`id="error"`, "The two passwords differ."},
		},
		{
			name: "password too short", path: "/admin/ui/password", status: http.StatusBadRequest,
			form: url.Values{"password": {"short"}, "repeat": {"short"}, "confirm": {"yes"}},
			body: []string{`id="error"`, "Could not change the password"},
		},
		{
			name: "password without the confirmation", path: "/admin/ui/password", status: http.StatusBadRequest,
			form: url.Values{"password": {newPassword}, "repeat": {newPassword}},
			body: []string{`id="error"`, "Tick the box"},
			check: func(t *testing.T, _ response) {
				if r := do(t, "GET", s.URL+"/admin", "", ownerBasic(newPassword)); r.Status != http.StatusUnauthorized {
					t.Errorf("the refused new password: GET /admin %d", r.Status)
				}
			},
		},
		{
			name: "password", path: "/admin/ui/password", status: http.StatusOK,
			form: url.Values{"password": {newPassword}, "repeat": {newPassword}, "confirm": {"yes"}},
			body: []string{"Password changed"},
			check: func(t *testing.T, _ response) {
				if r := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password)); r.Status != http.StatusUnauthorized {
					t.Errorf("GET /admin with the old password: %d, want 401", r.Status)
				}
				if r := do(t, "GET", s.URL+"/admin", "", ownerBasic(newPassword)); r.Status != http.StatusOK {
					t.Errorf("GET /admin with the new password: %d, want 200", r.Status)
				}
			},
		},
	}
	for _, tc := range tests {
		ok := t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"_csrf": {csrf}}
			for k, v := range tc.form {
				form[k] = v
			}
			r := doWith(t, browser, "POST", s.URL+tc.path, form.Encode(), formCT, "Origin: "+s.URL, ownerBasic(s.Password))
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if got := r.Header.Get("Content-Security-Policy"); got != pageCSP {
				t.Errorf("CSP %q on a form's answer", got)
			}
			if tc.location != "" {
				if got := r.Header.Get("Location"); got != tc.location {
					t.Errorf("Location %q, want %q", got, tc.location)
				}
			} else if ct := r.Header.Get("Content-Type"); ct != htmlCT {
				t.Errorf("Content-Type %q, want %q", ct, htmlCT)
			}
			for _, want := range tc.body {
				if !strings.Contains(r.Body, want) {
					t.Errorf("answer lacks %q:\n%s", want, r.Body)
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
		if !ok {
			t.FailNow() // later steps build on this one
		}
	}
}

// TestAdminFormsCSRF: a form post needs both checks. It must say it comes
// from camd's own origin (Sec-Fetch-Site, where sent, same-origin; Origin, or
// Referer without it, camd's scheme and host), and carry a token camd signed
// that matches a camd_csrf cookie. A pair a page on another port of this
// host plants (cookies are not separated by port) is refused even from the
// right origin, and the token is never taken from the query string.
func TestAdminFormsCSRF(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	page := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password), "Accept: text/html")
	c := cookie(page.Header, csrfCookie)
	if c == nil {
		t.Fatalf("no %s cookie", csrfCookie)
	}
	ck, valid := c.Value, pageCSRF(t, page.Body)
	if ck == valid {
		t.Fatalf("the field is the cookie %q", ck)
	}
	wrong := strings.Repeat("x", len(valid))
	// madeUp has the token's form, but camd did not sign it.
	madeUp := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 48))
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	otherPort := "http://" + u.Hostname() + ":1"
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noFollow}
	const none = "-" // send no such header

	tests := []struct {
		name     string
		cookies  []string // camd_csrf values sent
		field    string   // _csrf in the body, "" none
		query    string   // _csrf in the query string, "" none
		fetch    string   // Sec-Fetch-Site, "" none
		origins  []string // Origin values; nil is camd's own, {none} none
		referer  string   // "" none
		accepted bool
	}{
		{name: "no field, no cookie"},
		{name: "cookie, wrong field", cookies: []string{ck}, field: wrong},
		{name: "field, no cookie", field: valid},
		{name: "valid, but cross-site", cookies: []string{ck}, field: valid, fetch: "cross-site"},
		// Any port on this host is the same site.
		{name: "valid, but same-site", cookies: []string{ck}, field: valid, fetch: "same-site"},
		// "none" is a navigation the user started, never a form post.
		{name: "valid, but none", cookies: []string{ck}, field: valid, fetch: "none"},
		{name: "same-origin, no token", fetch: "same-origin"},
		// Issue 13: a page on another port planted the cookie and posts
		// the field to match. Echo's double-submit check took this pair.
		{name: "planted pair of the token's form", cookies: []string{madeUp}, field: madeUp},
		{name: "planted pair", cookies: []string{"forged"}, field: "forged"},
		{name: "planted pair shadowing the real cookie", cookies: []string{madeUp, ck}, field: madeUp},
		// A page on another port receives camd's cookie, as a browser
		// sends cookies to every port of a host: its value is no field.
		{name: "the real cookie's value as the field", cookies: []string{ck}, field: ck},
		{name: "valid, in the query string only", cookies: []string{ck}, query: valid},
		{name: "valid, but no Origin or Referer", cookies: []string{ck}, field: valid, origins: []string{none}},
		{name: "valid, but Origin null", cookies: []string{ck}, field: valid, origins: []string{"null"}},
		{name: "valid, but Origin another port", cookies: []string{ck}, field: valid, origins: []string{otherPort}},
		{name: "valid, but Origin https", cookies: []string{ck}, field: valid, origins: []string{"https://" + u.Host}},
		{name: "valid, but Origin another host", cookies: []string{ck}, field: valid, origins: []string{"http://localhost:" + u.Port()}},
		{name: "valid, but Origin with a path", cookies: []string{ck}, field: valid, origins: []string{s.URL + "/admin"}},
		{name: "valid, but two Origins", cookies: []string{ck}, field: valid, origins: []string{s.URL, otherPort}},
		{name: "valid, but Referer another port", cookies: []string{ck}, field: valid, origins: []string{none}, referer: otherPort + "/admin"},
		{name: "valid, but Origin another port and Referer own", cookies: []string{ck}, field: valid, origins: []string{otherPort}, referer: s.URL + "/admin"},
		{name: "valid, own Origin", cookies: []string{ck}, field: valid, accepted: true},
		{name: "valid, own Origin, same-origin", cookies: []string{ck}, field: valid, fetch: "same-origin", accepted: true},
		{name: "valid, own Referer, no Origin", cookies: []string{ck}, field: valid, origins: []string{none}, referer: s.URL + "/admin?done=rotated", accepted: true},
		// A planted cookie comes first (its path is longer), and must not
		// lock the owner out.
		{name: "valid behind a planted cookie", cookies: []string{madeUp, ck}, field: valid, accepted: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			headers := []string{formCT, ownerBasic(s.Password)}
			if len(tc.cookies) > 0 {
				var pairs []string
				for _, v := range tc.cookies {
					pairs = append(pairs, csrfCookie+"="+v)
				}
				headers = append(headers, "Cookie: "+strings.Join(pairs, "; "))
			}
			if tc.fetch != "" {
				headers = append(headers, "Sec-Fetch-Site: "+tc.fetch)
			}
			origins := tc.origins
			if origins == nil {
				origins = []string{s.URL}
			}
			for _, o := range origins {
				if o != none {
					headers = append(headers, "Origin: "+o)
				}
			}
			if tc.referer != "" {
				headers = append(headers, "Referer: "+tc.referer)
			}
			target := func(path string) string {
				if tc.query != "" {
					path += "?" + url.Values{"_csrf": {tc.query}}.Encode()
				}
				return s.URL + path
			}
			form := func(kv ...string) string {
				v := url.Values{}
				if tc.field != "" {
					v.Set("_csrf", tc.field)
				}
				for i := 0; i < len(kv); i += 2 {
					v.Set(kv[i], kv[i+1])
				}
				return v.Encode()
			}
			name := "forged-" + string(rune('a'+i))
			keyBefore := readSecret(t, s)
			create := doWith(t, client, "POST", target("/admin/ui/clients"), form("name", name, "scopes", "ack"), headers...)
			rotate := doWith(t, client, "POST", target("/admin/ui/rotate-secret"), form("confirm", "yes"), headers...)
			created := slices.Contains(clientNames(t, s, s.Password), name)
			rotated := !bytes.Equal(readSecret(t, s), keyBefore)

			if tc.accepted {
				if create.Status != http.StatusCreated || !created {
					t.Errorf("create: %d, created %v; want 201 and the client", create.Status, created)
				}
				if rotate.Status != http.StatusSeeOther || !rotated {
					t.Errorf("rotate: %d, rotated %v; want 303 and a new secret", rotate.Status, rotated)
				}
				return
			}
			for what, r := range map[string]response{"create": create, "rotate": rotate} {
				if r.Status != http.StatusForbidden || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s: %d %q, want 403 JSON", what, r.Status, r.Header.Get("Content-Type"))
					continue
				}
				if msg, _ := r.JSON(t)["error"].(string); !strings.Contains(msg, "CSRF") {
					t.Errorf("%s: error %q does not say CSRF", what, msg)
				}
				checkError(t, r, apierr.CSRF)
				if got := r.Header.Get("Content-Security-Policy"); got != pageCSP {
					t.Errorf("%s: CSP %q on the refusal", what, got)
				}
				if got := r.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("%s: a refusal sets cookies %q: a token must never go to a request before its password is checked", what, got)
				}
			}
			if created || rotated {
				t.Errorf("a refused form changed something: client created %v, secret rotated %v", created, rotated)
			}
		})
	}
}

// TestAdminFormsCSRFToken: the page hands a browser back the token its
// cookie already holds, so two open tabs both keep working, but never a
// cookie camd did not sign; and a token only lives as long as the process
// that signed it.
func TestAdminFormsCSRFToken(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, serverOpts{})
	fields := map[string]string{} // cookie token -> the page's field
	get := func(s *server, cookies ...string) string {
		t.Helper()
		headers := []string{ownerBasic(s.Password), "Accept: text/html"}
		for _, c := range cookies {
			headers = append(headers, "Cookie: "+csrfCookie+"="+c)
		}
		r := do(t, "GET", s.URL+"/admin", "", headers...)
		c := cookie(r.Header, csrfCookie)
		if r.Status != http.StatusOK || c == nil {
			t.Fatalf("GET /admin: %d, cookie %v", r.Status, c)
		}
		fields[c.Value] = pageCSRF(t, r.Body)
		if !slices.Contains(r.Header.Values("Vary"), "Cookie") {
			t.Errorf("Vary %q, want Cookie among them", r.Header.Values("Vary"))
		}
		return c.Value
	}
	first := get(s)
	if got := get(s, first); got != first {
		t.Errorf("a second view with the cookie gave token %q, want the cookie's %q", got, first)
	}
	madeUp := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 48))
	for _, planted := range []string{"forged", madeUp} {
		if got := get(s, planted); got == planted || got == first {
			t.Errorf("GET /admin with cookie %q gave token %q: want a new one", planted, got)
		}
	}
	if got := get(s, madeUp, first); got != first {
		t.Errorf("the real cookie behind a planted one gave token %q, want %q", got, first)
	}

	// Another process, on the same data directory, signs under another key.
	pw := s.Password
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, dir, serverOpts{})
	s2.Password = pw
	r := do(t, "POST", s2.URL+"/admin/ui/rotate-secret", url.Values{"_csrf": {fields[first]}, "confirm": {"yes"}}.Encode(),
		formCT, "Origin: "+s2.URL, "Cookie: "+csrfCookie+"="+first, ownerBasic(pw))
	if r.Status != http.StatusForbidden {
		t.Errorf("a token of the previous process: %d %s, want 403", r.Status, r.Body)
	}
	if got := get(s2, first); got == first {
		t.Error("the new process handed back the previous process's token")
	}
}

// TestAdminFormsBodyOnly: a form's fields are read from its body only. A
// link or a form action carrying confirm=yes in its query string confirms
// nothing, and names no client and no password.
func TestAdminFormsBodyOnly(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	page := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password), "Accept: text/html")
	tok := pageCSRF(t, page.Body)
	headers := []string{formCT, "Origin: " + s.URL, "Cookie: " + csrfCookie + "=" + cookie(page.Header, csrfCookie).Value, ownerBasic(s.Password)}
	body := url.Values{"_csrf": {tok}}
	const newPassword = "a new owner password"
	keyBefore := readSecret(t, s)
	for _, tc := range []struct {
		path  string
		query url.Values
		body  url.Values
		err   string
	}{
		{"/admin/ui/rotate-secret", url.Values{"confirm": {"yes"}}, nil, "Tick the box to confirm rotating"},
		{"/admin/ui/password", url.Values{"confirm": {"yes"}}, url.Values{"password": {newPassword}, "repeat": {newPassword}}, "Tick the box to confirm changing"},
		{"/admin/ui/password", url.Values{"password": {newPassword}, "repeat": {newPassword}}, url.Values{"confirm": {"yes"}}, "Could not change the password"},
		{"/admin/ui/clients", url.Values{"name": {"from-query"}, "scopes": {"ack"}}, nil, "Could not create the client"},
	} {
		t.Run(tc.path+"?"+tc.query.Encode(), func(t *testing.T) {
			form := url.Values{}
			for k, v := range body {
				form[k] = v
			}
			for k, v := range tc.body {
				form[k] = v
			}
			r := do(t, "POST", s.URL+tc.path+"?"+tc.query.Encode(), form.Encode(), headers...)
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, tc.err) {
				t.Errorf("status %d, want 400 with %q:\n%s", r.Status, tc.err, r.Body)
			}
		})
	}
	if !bytes.Equal(readSecret(t, s), keyBefore) {
		t.Error("the secret was rotated by a confirm=yes in the query string")
	}
	if r := do(t, "GET", s.URL+"/admin", "", ownerBasic(newPassword)); r.Status != http.StatusUnauthorized {
		t.Errorf("the password from the query string works: GET /admin %d", r.Status)
	}
	if got := clientNames(t, s, s.Password); len(got) != 0 {
		t.Errorf("clients %q, want none", got)
	}
}

// TestAdminFormsCSRFBeforePassword: a forged post is refused before its
// password is checked, so forging does not cost an argon2 hash and cannot
// lock the owner out. Six refusals with a wrong password would lock the
// address (5 failures) if the password were checked: half of them without an
// Origin, half from the right origin with a planted token.
func TestAdminFormsCSRFBeforePassword(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	for i := range 6 {
		headers := []string{formCT, ownerBasic("wrong-password")}
		body := "name=forged"
		if i%2 == 1 {
			headers = append(headers, "Origin: "+s.URL, "Cookie: "+csrfCookie+"=planted")
			body += "&_csrf=planted"
		}
		r := do(t, "POST", s.URL+"/admin/ui/clients", body, headers...)
		if r.Status != http.StatusForbidden {
			t.Fatalf("forged post %d: %d %s, want 403", i+1, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password)); r.Status != http.StatusOK {
		t.Errorf("GET /admin after six forged posts: %d %s, want 200", r.Status, r.Body)
	}
}

// TestAdminFormRefusals: the forms take only small urlencoded bodies, and
// only by POST. The body checks come before the CSRF and password checks.
func TestAdminFormRefusals(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	// sized is a form of exactly n bytes, without a CSRF token.
	sized := func(n int) string { return "name=" + strings.Repeat("a", n-len("name=")) }
	tests := []struct {
		name, method, body string
		headers            []string
		status             int
		err                string
		code               apierr.Code
	}{
		{"JSON body", "POST", `{"name":"x"}`, []string{jsonCT}, http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded", apierr.UnsupportedMediaType},
		{"multipart body", "POST", "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n",
			[]string{"Content-Type: multipart/form-data; boundary=b"}, http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded", apierr.UnsupportedMediaType},
		{"no Content-Type", "POST", "name=x", nil, http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded", apierr.UnsupportedMediaType},
		// 4096 bytes pass the cap and reach the CSRF check.
		{"form of 4096 bytes", "POST", sized(4096), []string{formCT}, http.StatusForbidden, "CSRF check failed: submit the form from this cam's admin page", apierr.CSRF},
		{"form of 4097 bytes", "POST", sized(4097), []string{formCT}, http.StatusRequestEntityTooLarge, "request entity too large", apierr.BodyTooLarge},
		{"GET", "GET", "", nil, http.StatusMethodNotAllowed, "method not allowed", apierr.MethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, s.URL+"/admin/ui/clients", tc.body, append(tc.headers, ownerBasic(s.Password))...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if got := r.JSON(t)["error"]; got != tc.err {
				t.Errorf("error %q, want %q", got, tc.err)
			}
			checkError(t, r, tc.code)
			if tc.status == http.StatusMethodNotAllowed && r.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if got := clientNames(t, s, s.Password); len(got) != 0 {
		t.Errorf("clients %q after refused forms, want none", got)
	}
}

// TestAdminFormChunked: a form sent chunked (no Content-Length) is read
// once, before any handler, so one over the cap gets 413 like a sized one,
// not a page complaining that a field is missing.
func TestAdminFormChunked(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	page := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password), "Accept: text/html")
	tok := pageCSRF(t, page.Body)
	for _, tc := range []struct {
		path   string
		size   int
		status int
	}{
		{"/admin/ui/rotate-secret", 5000, http.StatusRequestEntityTooLarge},
		{"/admin/ui/clients", 5000, http.StatusRequestEntityTooLarge},
		{"/admin/ui/rotate-secret", 100, http.StatusSeeOther},
	} {
		t.Run(fmt.Sprintf("%s %d bytes", tc.path, tc.size), func(t *testing.T) {
			prefix := "confirm=yes&_csrf=" + tok + "&pad="
			body := prefix + strings.Repeat("a", tc.size-len(prefix))
			// A reader of unknown length makes the client send it chunked.
			req, err := http.NewRequest("POST", s.URL+tc.path, io.MultiReader(strings.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			req.Header.Set("Origin", s.URL)
			req.Header.Set("Cookie", csrfCookie+"="+cookie(page.Header, csrfCookie).Value)
			req.Header.Set("Authorization", "Basic "+basic("owner", s.Password))
			client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noFollow}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", res.StatusCode, tc.status, b)
			}
			if req.ContentLength != 0 && req.ContentLength != -1 {
				t.Errorf("request was sent with Content-Length %d, not chunked", req.ContentLength)
			}
		})
	}
}

// TestAdminStylesheet: the stylesheet needs no password (it holds nothing
// private, and a check would cost a hash per page view) and is cached.
func TestAdminStylesheet(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	r := do(t, "GET", s.URL+"/admin/assets/admin.css", "")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		r.Header.Get("Cache-Control") != "public, max-age=3600" || r.Body == "" {
		t.Errorf("got %d, Content-Type %q, Cache-Control %q, %d bytes", r.Status,
			r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"), len(r.Body))
	}
}

// TestAdminPageShowsUse: the page shows the last ack, and when each client
// last used its token, from where.
func TestAdminPageShowsUse(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	page := func() string {
		t.Helper()
		r := do(t, "GET", s.URL+"/admin", "", ownerBasic(s.Password), "Accept: text/html")
		if r.Status != http.StatusOK {
			t.Fatalf("GET /admin: %d %s", r.Status, r.Body)
		}
		return r.Body
	}
	r := do(t, "POST", s.URL+"/admin/clients", `{"name":"gate-esp32"}`, jsonCT, ownerBasic(s.Password))
	if r.Status != http.StatusCreated {
		t.Fatalf("create client: %d %s", r.Status, r.Body)
	}
	clientTok, _ := r.JSON(t)["token"].(string)
	rowRE := regexp.MustCompile(`(?s)<tr data-client="gate-esp32">.*?</tr>`)

	before := page()
	if !strings.Contains(before, "<p>No ack yet.</p>") {
		t.Error("no ack yet, but the page does not say so")
	}
	if row := rowRE.FindString(before); !strings.Contains(row, "<td>never</td>") {
		t.Errorf("unused client's row: %q, want it to say never", row)
	}

	if a := ackWith(t, s, login(t, s), 7); a.Status != http.StatusOK {
		t.Fatalf("owner ack: %d %s", a.Status, a.Body)
	}
	if !strings.Contains(page(), "<p>Ack #7 by owner, <time datetime=") {
		t.Error("the page does not show the owner's ack #7")
	}
	if a := ackWith(t, s, clientTok, 8); a.Status != http.StatusOK {
		t.Fatalf("client ack: %d %s", a.Status, a.Body)
	}
	after := page()
	if !strings.Contains(after, "<p>Ack #8 by client:gate-esp32, <time datetime=") {
		t.Error("the page does not show the client's ack #8")
	}
	if row := rowRE.FindString(after); !strings.Contains(row, " (just now)</time> from 127.0.0.1</td>") {
		t.Errorf("used client's row: %q, want its last use just now from 127.0.0.1", row)
	}
}

// TestAdminPageNotice: the notice a redirect asks for is escaped, and only
// the known codes make one.
func TestAdminPageNotice(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	tests := []struct {
		query  string
		notice string // "" for none
	}{
		{"done=revoked&client=porch-esp32", "Revoked client porch-esp32: its token is refused from now on."},
		// Only a valid client name is echoed: no markup, and no sentence
		// of a crafted link's own.
		{"done=revoked&client=" + url.QueryEscape("<script>x</script>"), ""},
		{"done=revoked&client=" + url.QueryEscape("x. Your cam is compromised, call 555-0100"), ""},
		{"done=rotated", "Rotated the signing secret: every token issued before is refused. Log in again in the phone app, and pair each client again."},
		{"done=" + url.QueryEscape("<b>pwned</b>"), ""},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := do(t, "GET", s.URL+"/admin?"+tc.query, "", ownerBasic(s.Password), "Accept: text/html")
			if r.Status != http.StatusOK {
				t.Fatalf("status %d %s", r.Status, r.Body)
			}
			if strings.Contains(r.Body, "<script") || strings.Contains(r.Body, "<b>") {
				t.Error("markup from the query is on the page unescaped")
			}
			if tc.notice == "" {
				if strings.Contains(r.Body, `id="notice"`) {
					t.Errorf("a notice for %q: %s", tc.query, noticeRE.FindString(r.Body))
				}
				return
			}
			if got := submatch(t, noticeRE, r.Body); got != tc.notice {
				t.Errorf("notice %q, want %q", got, tc.notice)
			}
		})
	}
}

// TestAdminFormsCSRFScheme: the origin's scheme must be the one camd itself
// serves, https exactly when it serves TLS; a client's X-Forwarded-Proto
// does not change it. Over HTTPS the CSRF cookie is Secure.
func TestAdminFormsCSRFScheme(t *testing.T) {
	for _, tc := range []struct {
		tls      string
		scheme   string // camd's
		origin   string // the scheme the post claims
		forwards bool   // X-Forwarded-Proto: https
		accepted bool
	}{
		{"off", "http", "http", false, true},
		{"off", "http", "https", false, false},
		{"off", "http", "https", true, false},
		{"auto", "https", "https", false, true},
		{"auto", "https", "http", false, false},
	} {
		t.Run(fmt.Sprintf("%s server, %s origin, forwarded %v", tc.scheme, tc.origin, tc.forwards), func(t *testing.T) {
			s := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.TLS = tc.tls }})
			host := strings.TrimPrefix(s.URL, "http://")
			base := tc.scheme + "://" + host
			client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noFollow, Transport: &http.Transport{
				// A self-signed certificate on loopback; what is tested
				// here is the Origin check, not the certificate.
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			}}
			page := doWith(t, client, "GET", base+"/admin", "", ownerBasic(s.Password), "Accept: text/html")
			c := cookie(page.Header, csrfCookie)
			if c == nil || c.Secure != (tc.scheme == "https") {
				t.Fatalf("cookie %v over %s", c, tc.scheme)
			}
			tok := pageCSRF(t, page.Body)
			headers := []string{formCT, "Origin: " + tc.origin + "://" + host, "Cookie: " + csrfCookie + "=" + c.Value, ownerBasic(s.Password)}
			if tc.forwards {
				headers = append(headers, "X-Forwarded-Proto: https")
			}
			r := doWith(t, client, "POST", base+"/admin/ui/rotate-secret", url.Values{"_csrf": {tok}, "confirm": {"yes"}}.Encode(), headers...)
			want := http.StatusForbidden
			if tc.accepted {
				want = http.StatusSeeOther
			}
			if r.Status != want {
				t.Errorf("status %d, want %d: %s", r.Status, want, r.Body)
			}
		})
	}
}
