package admin

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func TestAgoText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 min ago"},
		{59*time.Minute + 59*time.Second, "59 min ago"},
		{time.Hour, "1 h ago"},
		{47 * time.Hour, "47 h ago"},
		{48 * time.Hour, "2 days ago"},
		{400 * 24 * time.Hour, "400 days ago"},
	}
	for _, tt := range tests {
		if got := agoText(tt.d); got != tt.want {
			t.Errorf("agoText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestUpText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{42*time.Second + 900*time.Millisecond, "42 s"},
		{5*time.Minute + 3*time.Second, "5 min 3 s"},
		{5*time.Hour + 12*time.Minute + 59*time.Second, "5 h 12 min"},
		{3*24*time.Hour + 4*time.Hour + 30*time.Minute, "3 d 4 h"},
	}
	for _, tt := range tests {
		if got := upText(tt.d); got != tt.want {
			t.Errorf("upText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestAt(t *testing.T) {
	if got := at(time.Time{}); got != (stamp{}) {
		t.Errorf("at(zero) = %+v, want empty", got)
	}
	// Shown in UTC whatever the zone it comes in.
	cet := time.FixedZone("CET", 3600)
	got := at(time.Date(2026, 11, 28, 21, 15, 33, 0, cet))
	if want := (stamp{Text: "2026-11-28 20:15:33 UTC", ISO: "2026-11-28T20:15:33Z"}); got != want {
		t.Errorf("at = %+v, want %+v", got, want)
	}
}

func TestIsSafe(t *testing.T) {
	for method, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true,
		"POST": false, "PUT": false, "DELETE": false, "PATCH": false, "get": false,
	} {
		if got := isSafe(method); got != want {
			t.Errorf("isSafe(%q) = %v, want %v", method, got, want)
		}
	}
}

func TestNoticeFor(t *testing.T) {
	tests := []struct {
		query, want string
	}{
		{"", ""},
		{"done=revoked&client=porch-esp32", "Revoked client porch-esp32: its token is refused from now on."},
		{"done=revoked", ""},
		{"done=revoked&client=a+b", ""},
		{"done=rotated", "Rotated the signing secret: every token issued before is refused. Log in again in the phone app, and pair each client again."},
		{"done=other", ""},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := noticeFor(q); got != tt.want {
			t.Errorf("noticeFor(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestCSRFTokenValid(t *testing.T) {
	g, other := newCSRFGuard(false), newCSRFGuard(false)
	tok := g.mint()
	// The std-base64 case needs a token whose two spellings differ: one in
	// eight has no '-' or '_', and would be the same token.
	for range 100 {
		if strings.ContainsAny(tok, "-_") {
			break
		}
		tok = g.mint()
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	nonce := bytes.Clone(raw)
	nonce[0] ^= 1
	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{"minted", tok, true},
		{"another minted", g.mint(), true},
		{"another process's", other.mint(), false},
		{"tag changed", base64.RawURLEncoding.EncodeToString(flipped), false},
		{"nonce changed", base64.RawURLEncoding.EncodeToString(nonce), false},
		{"padded", tok + "=", false},
		{"std base64", base64.StdEncoding.EncodeToString(raw), false},
		{"cut", tok[:len(tok)-1], false},
		{"longer", tok + "A", false},
		{"empty", "", false},
		{"made up", strings.Repeat("A", csrfTokenLen), false},
	}
	for _, tt := range tests {
		if got := g.valid(tt.tok); got != tt.want {
			t.Errorf("%s: valid(%q) = %v, want %v", tt.name, tt.tok, got, tt.want)
		}
	}
	if len(tok) != csrfTokenLen || tok == g.mint() {
		t.Errorf("token %q: want %d characters, a new one each time", tok, csrfTokenLen)
	}
}

func TestCSRFFromOwnOrigin(t *testing.T) {
	e := echo.New()
	tests := []struct {
		name    string
		tls     bool
		headers map[string][]string
		want    bool
	}{
		{"Origin", false, map[string][]string{"Origin": {"http://cam.test:8080"}}, true},
		{"Origin over TLS", true, map[string][]string{"Origin": {"https://cam.test:8080"}}, true},
		{"Origin and same-origin", false, map[string][]string{"Origin": {"http://cam.test:8080"}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"Referer", false, map[string][]string{"Referer": {"http://cam.test:8080/admin?done=rotated"}}, true},
		{"Referer with user info", false, map[string][]string{"Referer": {"http://u@cam.test:8080/"}}, true},
		{"nothing", false, nil, false},
		{"Sec-Fetch-Site alone", false, map[string][]string{"Sec-Fetch-Site": {"same-origin"}}, false},
		{"Origin null", false, map[string][]string{"Origin": {"null"}}, false},
		{"Origin null, Referer own", false, map[string][]string{"Origin": {"null"}, "Referer": {"http://cam.test:8080/admin"}}, false},
		{"Origin other port", false, map[string][]string{"Origin": {"http://cam.test:9090"}}, false},
		{"Origin without port", false, map[string][]string{"Origin": {"http://cam.test"}}, false},
		{"Origin other host", false, map[string][]string{"Origin": {"http://evil.test:8080"}}, false},
		{"Origin suffix", false, map[string][]string{"Origin": {"http://cam.test:8080.evil.test"}}, false},
		{"Origin https over HTTP", false, map[string][]string{"Origin": {"https://cam.test:8080"}}, false},
		{"Origin http over TLS", true, map[string][]string{"Origin": {"http://cam.test:8080"}}, false},
		{"Origin forwarded https over HTTP", false, map[string][]string{"Origin": {"https://cam.test:8080"}, "X-Forwarded-Proto": {"https"}}, false},
		{"Origin with a path", false, map[string][]string{"Origin": {"http://cam.test:8080/"}}, false},
		{"two Origins", false, map[string][]string{"Origin": {"http://cam.test:8080", "http://cam.test:8080"}}, false},
		{"cross-site", false, map[string][]string{"Origin": {"http://cam.test:8080"}, "Sec-Fetch-Site": {"cross-site"}}, false},
		{"same-site", false, map[string][]string{"Origin": {"http://cam.test:8080"}, "Sec-Fetch-Site": {"same-site"}}, false},
		{"none", false, map[string][]string{"Origin": {"http://cam.test:8080"}, "Sec-Fetch-Site": {"none"}}, false},
		{"two Sec-Fetch-Site", false, map[string][]string{"Origin": {"http://cam.test:8080"}, "Sec-Fetch-Site": {"same-origin", "cross-site"}}, false},
		{"Referer other port", false, map[string][]string{"Referer": {"http://cam.test:9090/admin"}}, false},
		{"Referer relative", false, map[string][]string{"Referer": {"/admin"}}, false},
		{"Referer scheme-relative", false, map[string][]string{"Referer": {"//cam.test:8080/admin"}}, false},
		{"two Referers", false, map[string][]string{"Referer": {"http://cam.test:8080/", "http://cam.test:8080/"}}, false},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodPost, "http://cam.test:8080/admin/ui/password", nil)
		if !tt.tls {
			req.TLS = nil
		} else {
			req.TLS = &tls.ConnectionState{}
		}
		for k, v := range tt.headers {
			req.Header[k] = v
		}
		if got := fromOwnOrigin(e.NewContext(req, httptest.NewRecorder())); got != tt.want {
			t.Errorf("%s: fromOwnOrigin = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCSRFMatches: a post's field must be the MAC camd derives from one of
// the request's signed cookies; the cookie's own value, another guard's
// field, or a field for an unsigned cookie are refused.
func TestCSRFMatches(t *testing.T) {
	g, other := newCSRFGuard(false), newCSRFGuard(false)
	tok, tok2 := g.mint(), g.mint()
	otherTok := other.mint()
	planted := strings.Repeat("A", csrfTokenLen)
	tests := []struct {
		name    string
		cookies []string
		field   string
		want    bool
	}{
		{"its field", []string{tok}, g.field(tok), true},
		{"behind a planted cookie", []string{planted, tok}, g.field(tok), true},
		{"the second tab's", []string{tok, tok2}, g.field(tok2), true},
		{"the cookie itself", []string{tok}, tok, false},
		{"another cookie's field", []string{tok}, g.field(tok2), false},
		{"a field for an unsigned cookie", []string{planted}, g.field(planted), false},
		{"another process's pair", []string{otherTok}, other.field(otherTok), false},
		{"no cookie", nil, g.field(tok), false},
		{"empty field", []string{tok}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/admin/ui/clients", nil)
			for _, c := range tt.cookies {
				r.AddCookie(&http.Cookie{Name: csrfCookie, Value: c})
			}
			if got := g.matches(r, tt.field); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
	if f := g.field(tok); f == tok || f != g.field(tok) || f == other.field(tok) {
		t.Fatalf("field %q: want a stable MAC of the cookie under this guard's key", f)
	}
}
