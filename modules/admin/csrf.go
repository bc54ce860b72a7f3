package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
)

// The page's forms are guarded against cross-site request forgery by two
// checks, each enough on its own against a browser, both before the password
// check:
//
//  1. The request must come from this origin: Sec-Fetch-Site, where the
//     browser sends it, must be "same-origin", and Origin (or, without it,
//     Referer) must be camd's own scheme and host. A request with neither
//     is refused. Chromium sends no Sec-Fetch-Site to a plain-HTTP origin
//     that is not loopback (a cam on the LAN), but it does send Origin.
//  2. The camd_csrf cookie must be a token camd signed (a nonce and its
//     HMAC under a key only this process holds), and the form's _csrf
//     field must be another HMAC of that cookie, which camd writes only
//     into the page it serves behind Basic auth. Another port of the cam's
//     host is the same site: it can plant cookies for it, and a browser
//     sends it camd's cookie too (cookies are not separated by port). A
//     planted cookie does not verify, and a read one gives no field, so a
//     plain double-submit pair is not enough and this check stands on its
//     own.
//
// Echo's CSRF middleware is not used: its token is any cookie value (so a
// planted one passes), it lets Sec-Fetch-Site "none" through, it looks at
// no Origin, and it reads the field from the query string too; none of that
// has a hook. Go's http.CrossOriginProtection neither: it lets a request
// without Origin through and compares the host but not the scheme.

const (
	csrfCookie = "camd_csrf"
	// csrfKey is where the request's token is kept for the templates.
	csrfKey = "csrf"
	// csrfNonceLen and the SHA-256 tag make a token of 64 base64url
	// characters.
	csrfNonceLen = 16
	csrfTokenLen = 64
	// csrfLabel and csrfFieldLabel separate the cookie's and the field's
	// MACs from each other and from any other use of the key.
	csrfLabel      = "camd admin form token v1\x00"
	csrfFieldLabel = "camd admin form field v1\x00"
	// csrfCookieAge matches what Echo's middleware used: a day, renewed
	// with every view of the page.
	csrfCookieAge = 24 * 60 * 60
)

// csrfGuard makes and checks the form tokens.
type csrfGuard struct {
	// key lives only in this process: a restart invalidates every token,
	// which costs the owner one reload of the page, and there is nothing
	// on disk to steal or to rotate.
	key []byte
	// secure marks the cookie Secure: camd serves TLS.
	secure bool
}

func newCSRFGuard(secure bool) *csrfGuard {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	return &csrfGuard{key: key, secure: secure}
}

func (g *csrfGuard) mac(label string, msg []byte) []byte {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte(label))
	h.Write(msg)
	return h.Sum(nil)
}

func (g *csrfGuard) tag(nonce []byte) []byte { return g.mac(csrfLabel, nonce) }

// field is the form field that goes with the cookie token tok.
func (g *csrfGuard) field(tok string) string {
	return base64.RawURLEncoding.EncodeToString(g.mac(csrfFieldLabel, []byte(tok)))
}

// mint makes a new token: a random nonce and its HMAC, base64url.
func (g *csrfGuard) mint() string {
	nonce := make([]byte, csrfNonceLen)
	rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(append(nonce, g.tag(nonce)...))
}

// valid reports whether tok is one this process made.
func (g *csrfGuard) valid(tok string) bool {
	if len(tok) != csrfTokenLen {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != csrfNonceLen+sha256.Size {
		return false
	}
	return hmac.Equal(raw[csrfNonceLen:], g.tag(raw[:csrfNonceLen]))
}

// middleware guards the routes it wraps. A safe request (the page's GET,
// which has passed Basic auth) gets the browser's valid token back, or a new
// one; tokens are never handed out before the password check, so an
// attacker cannot get one to plant. An unsafe request must pass both checks
// above. The field is read from the form body only (requireForm has parsed
// it), never from the query string.
func (g *csrfGuard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if isSafe(r.Method) {
			tok := ""
			for _, ck := range r.CookiesNamed(csrfCookie) {
				if g.valid(ck.Value) {
					tok = ck.Value
					break
				}
			}
			if tok == "" {
				tok = g.mint()
			}
			c.SetCookie(&http.Cookie{
				Name: csrfCookie, Value: tok, Path: "/admin", MaxAge: csrfCookieAge,
				HttpOnly: true, Secure: g.secure,
				// Strict: the cookie never rides along on a request
				// another site starts.
				SameSite: http.SameSiteStrictMode,
			})
			c.Set(csrfKey, g.field(tok))
			c.Response().Header().Add(echo.HeaderVary, echo.HeaderCookie)
			return next(c)
		}
		if !fromOwnOrigin(c) {
			return errCSRF
		}
		field := r.PostForm.Get(csrfField) // nil before parsing: refused
		if !g.matches(r, field) {
			return errCSRF
		}
		c.Set(csrfKey, field)
		return next(c)
	}
}

// matches reports whether field goes with a camd_csrf cookie camd signed.
// Any cookie, not the first: a cookie planted with a longer path comes
// first, and must not lock the owner out of the forms.
func (g *csrfGuard) matches(r *http.Request, field string) bool {
	for _, ck := range r.CookiesNamed(csrfCookie) {
		if g.valid(ck.Value) && hmac.Equal([]byte(field), []byte(g.field(ck.Value))) {
			return true
		}
	}
	return false
}

// fromOwnOrigin reports whether an unsafe request says it comes from camd's
// own origin: Sec-Fetch-Site, where sent, is "same-origin", and Origin, or
// Referer without it, is exactly the scheme camd serves (its own TLS, not a
// forwarded header) and the Host the request was sent to, byte for byte as
// browsers write both (lower case, no default port). "Origin: null" (a
// sandboxed or privacy-stripped request), a missing pair, or two values of
// one header are refused. The page sets Referrer-Policy same-origin so that
// its own posts carry their Origin: with no-referrer, Chromium sends "null".
func fromOwnOrigin(c echo.Context) bool {
	h := c.Request().Header
	if sites := h.Values(echo.HeaderSecFetchSite); len(sites) > 1 || len(sites) == 1 && sites[0] != "same-origin" {
		return false
	}
	host := c.Request().Host
	if host == "" {
		return false
	}
	own := "http://" + host
	if c.IsTLS() {
		own = "https://" + host
	}
	switch origins := h.Values(echo.HeaderOrigin); len(origins) {
	case 0:
	case 1:
		return origins[0] == own
	default:
		return false
	}
	refs := h.Values("Referer")
	if len(refs) != 1 {
		return false
	}
	u, err := url.Parse(refs[0])
	return err == nil && u.Scheme+"://"+u.Host == own
}
