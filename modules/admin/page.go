package admin

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/apierr"
	"camd/auth"
	"camd/jsonbody"
	"camd/pairing"
)

// The page's templates (*.templ) are compiled to Go by templ: no template
// is parsed or interpreted at run time, and nothing reaches text/template's
// reflection, which would keep every exported method in the binary
// (docs/performance.md). Regenerate after editing one: go generate ./modules/admin
//
//go:generate go run github.com/a-h/templ/cmd/templ@v0.3.1100 generate -path .

// The page's stylesheet, built into the binary: a cam has no web root, and
// the page must not load anything from another origin.
//
//go:embed web/admin.css
var web embed.FS

// AssetPath is the stylesheet's URL. It is served without auth: it holds
// nothing private.
const AssetPath = "/admin/assets/admin.css"

// FormLimit caps an admin form body; a password is at most 1 KiB.
const FormLimit = "4KiB"

// csrfField is the form field carrying the CSRF token.
const csrfField = "_csrf"

// contentSecurityPolicy allows the page's own stylesheet, the QR code's data:
// image and forms posting back here, and nothing else: no script at all, no
// framing (clickjacking a revoke button), no <base> rewriting.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// referrerPolicy is the page's; see newPages.
const referrerPolicy = "same-origin"

// errCSRF refuses a form that did not come from the admin page.
var errCSRF = apierr.New(apierr.CSRF, "CSRF check failed: submit the form from this cam's admin page")

// pages are the stylesheet and the middleware every HTML answer passes
// through: secure sets the CSP, csrf guards the forms (csrf.go).
type pages struct {
	css    []byte
	secure echo.MiddlewareFunc
	csrf   echo.MiddlewareFunc
}

func newPages(tls bool) (*pages, error) {
	css, err := web.ReadFile("web/admin.css")
	if err != nil {
		return nil, fmt.Errorf("admin stylesheet: %w", err)
	}
	// The rest of the security headers (nosniff, X-Frame-Options DENY)
	// are set on every answer by the app. Its Referrer-Policy no-referrer
	// is loosened to same-origin here: with no-referrer a browser sends
	// "Origin: null" with the page's own form posts, which the CSRF check
	// refuses; same-origin still sends nothing to any other origin. No
	// HSTS: with --tls auto the certificate is self-signed, and HSTS would
	// stop the owner from accepting it in the browser at all.
	secure := middleware.SecureWithConfig(middleware.SecureConfig{
		ContentSecurityPolicy: contentSecurityPolicy,
		ReferrerPolicy:        referrerPolicy,
	})
	return &pages{css: css, secure: secure, csrf: newCSRFGuard(tls).middleware}, nil
}

// isSafe reports whether a method changes nothing (RFC 9110, 9.2.1).
func isSafe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions || method == http.MethodTrace
}

// wantsHTML reports whether the Accept header asks for text/html by name, as
// browsers do. curl and client libraries send */* or nothing and keep
// getting the plain-text greeting.
func wantsHTML(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "text/html" {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

// index answers GET /admin: the page for browsers, "hi owner" for the rest.
func (m *Module) index(c echo.Context) error {
	c.Response().Header().Add(echo.HeaderVary, echo.HeaderAccept)
	if !wantsHTML(c.Request().Header.Get(echo.HeaderAccept)) {
		return m.hello(c)
	}
	return m.page(c)
}

// showPage renders the admin page for a GET; m.page wraps it in the CSP and
// CSRF middleware once, at Provision.
func (m *Module) showPage(c echo.Context) error {
	return m.renderIndex(c, http.StatusOK, noticeFor(c.QueryParams()), "", "")
}

// noticeFor turns the query a form's redirect carries into a sentence. Only
// known codes make one, and only a valid client name is echoed, so a crafted
// link cannot put a sentence of its own on the page.
func noticeFor(q url.Values) string {
	switch q.Get("done") {
	case "revoked":
		name := q.Get("client")
		if !auth.ValidClientName(name) {
			return ""
		}
		return "Revoked client " + name + ": its token is refused from now on."
	case "rotated":
		return "Rotated the signing secret: every token issued before is refused. Log in again in the phone app, and pair each client again."
	}
	return ""
}

// render writes one page, whole, so that an error is still an error page
// rather than half a page. Every page is private (status, clients, or a
// token shown once), so none is stored by the browser or a proxy.
func (m *Module) render(c echo.Context, status int, page templ.Component) error {
	var buf bytes.Buffer
	if err := page.Render(c.Request().Context(), &buf); err != nil {
		return fmt.Errorf("render admin page: %w", err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// indexData is what the admin page shows.
type indexData struct {
	CSRF           string
	Notice, Error  string
	Owner          string
	Version        string
	Uptime         string
	Clock          clockView
	TLSFingerprint string
	Secret         secretView
	Reports        []reportView
	Clients        []clientView
	Scopes         []scopeOption
	// NewName refills the create form after an error.
	NewName string
}

type clockView struct {
	Mode, Server            string
	Trusted, Synced         bool
	Offset                  string
	LastSync, NextSync, Now stamp
}

type secretView struct {
	Fingerprint string
	Since       stamp
	External    bool
}

// reportView is a module's app.Report as the page shows it.
type reportView struct {
	ID, Title, Text string
	At              stamp
}

type clientView struct {
	Name     string
	Scopes   []string
	Created  stamp
	LastUsed stamp
	LastAddr string
}

type scopeOption struct {
	Value, Description string
	Checked            bool
}

// stamp is a time as the page shows it: "2026-11-28 20:15 UTC (3 min ago)",
// with the machine-readable form for <time datetime>.
type stamp struct {
	Text, ISO string
}

// at is t without how long ago it was.
func at(t time.Time) stamp {
	if t.IsZero() {
		return stamp{}
	}
	t = t.UTC()
	return stamp{Text: t.Format("2006-01-02 15:04:05 UTC"), ISO: t.Format(time.RFC3339)}
}

// stamp is t with how long ago it was, by camd's clock; a time in the
// future (a clock stepped back) gets no "ago".
func (m *Module) stamp(t time.Time) stamp {
	s := at(t)
	if ago := m.clock.Now().Sub(t); s.Text != "" && ago >= 0 {
		s.Text += " (" + agoText(ago) + ")"
	}
	return s
}

// from is a sentence's " from ADDR", or nothing without an address.
func from(addr string) string {
	if addr == "" {
		return ""
	}
	return " from " + addr
}

// agoText is a short, rounded duration for people.
func agoText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}

// upText is an uptime: "3 d 4 h", "5 h 12 min", "42 s".
func upText(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%d d %d h", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%d min %d s", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%d s", d/time.Second)
}

// csrfToken is what the page's forms carry back, set by the CSRF guard.
func csrfToken(c echo.Context) string {
	tok, _ := c.Get(csrfKey).(string)
	return tok
}

// bodyForm is the form from the request body, parsed by requireForm. Fields
// in the query string are never read: a link could otherwise carry
// confirm=yes.
func bodyForm(c echo.Context) url.Values { return c.Request().PostForm }

// renderIndex shows the admin page with a notice or an error; checked are
// the create form's scopes to keep ticked after an error.
func (m *Module) renderIndex(c echo.Context, status int, notice, errText, newName string, checked ...string) error {
	list, err := m.auth.Clients()
	if err != nil {
		return err
	}
	st := m.clock.Status()
	sec := m.auth.Secret()
	d := indexData{
		CSRF:    csrfToken(c),
		Notice:  notice,
		Error:   errText,
		Owner:   auth.Owner,
		Version: m.version,
		Uptime:  upText(time.Since(m.started)),
		Clock: clockView{
			Mode: st.Mode, Server: st.Server, Trusted: st.Trusted, Synced: st.Synced,
			Offset:   st.Offset.Round(time.Microsecond).String(),
			LastSync: m.stamp(st.LastSync), NextSync: m.stamp(st.NextSync),
			Now: at(m.clock.Now()),
		},
		TLSFingerprint: m.fingerprint(),
		Secret:         secretView{Fingerprint: sec.Fingerprint, Since: m.stamp(sec.Since), External: sec.External},
		NewName:        newName,
	}
	for _, r := range m.reports() {
		d.Reports = append(d.Reports, reportView{ID: r.ID, Title: r.Title, Text: r.Text, At: m.stamp(r.At)})
	}
	for _, cl := range list {
		v := clientView{Name: cl.Name, Scopes: cl.Scopes, Created: m.stamp(cl.CreatedAt)}
		if cl.LastUsed != nil {
			v.LastUsed, v.LastAddr = m.stamp(cl.LastUsed.At), cl.LastUsed.Addr
		}
		d.Clients = append(d.Clients, v)
	}
	for _, sc := range m.auth.Scopes() {
		on := sc.Default
		if len(checked) > 0 {
			on = slices.Contains(checked, sc.Name)
		}
		d.Scopes = append(d.Scopes, scopeOption{Value: sc.Name, Description: sc.Description, Checked: on})
	}
	return m.render(c, status, indexPage(d))
}

// requireForm refuses any body but a urlencoded form, the only kind the
// page's forms send (multipart parsing would buffer files for nothing), and
// reads it once, so a body that is cut off, too large or too slow gets its
// own 4xx here rather than read as a form with fields missing.
func requireForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
		if err != nil || mt != echo.MIMEApplicationForm {
			return apierr.New(apierr.UnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded")
		}
		if _, err := c.FormParams(); err != nil {
			var he *echo.HTTPError
			switch {
			case errors.As(err, &he): // BodyLimit's 413 for a chunked body
				return he
			case jsonbody.IsTimeout(err):
				return apierr.New(apierr.RequestTimeout, "request body not received in time")
			}
			return apierr.New(apierr.InvalidBody, "could not read the form")
		}
		return next(c)
	}
}

// untrustedClock explains why no client can be created yet.
const untrustedClock = "camd's clock is not trusted yet, so a token made now would carry a wrong date. " +
	"Try again once the clock is synced (see Status)."

// createdData is the page that shows a new client's token, once.
type createdData struct {
	Name    string
	Scopes  []string
	Token   string
	Payload string // the QR code's text
	QR      templ.SafeURL
	TLS     bool
}

// formCreateClient answers the create form: 201 with the token and its QR
// code, or the admin page again with what was wrong.
func (m *Module) formCreateClient(c echo.Context) error {
	form := bodyForm(c)
	name := strings.TrimSpace(form.Get("name"))
	scopes := form["scopes"]
	if !m.clock.Trusted() {
		// As POST /admin/clients: a token made now would carry a wrong date.
		return m.renderIndex(c, http.StatusServiceUnavailable, "", untrustedClock, name, scopes...)
	}
	cl, grant, err := m.auth.AddClient(name, scopes)
	if e, ok := apierr.As(err); ok {
		switch e.Code {
		case apierr.Conflict:
			return m.renderIndex(c, http.StatusConflict, "", "A client named "+name+" exists: revoke it first, or pick another name.", name, scopes...)
		case apierr.InvalidBody:
			return m.renderIndex(c, http.StatusBadRequest, "", "Could not create the client: "+e.Message+".", name, scopes...)
		}
	}
	if err != nil {
		return err
	}
	tok := grant.Token
	p := pairing.New(baseURL(c), cl.Name, cl.Scopes, tok, m.fingerprint())
	text, err := p.JSON()
	if err != nil {
		return err
	}
	png, err := p.QR()
	if err != nil {
		return err
	}
	return m.render(c, http.StatusCreated, createdPage(createdData{
		Name: cl.Name, Scopes: cl.Scopes, Token: tok, Payload: text,
		// A data: URI from our own PNG bytes, base64 only; templ would
		// otherwise replace it as an unsafe URL.
		QR:  templ.SafeURL(pairing.DataURI(png)),
		TLS: m.fingerprint() != "",
	}))
}

// baseURL is the address the owner's browser reached camd at, which is the
// one the phone on the same network should use too.
func baseURL(c echo.Context) string {
	scheme := "http"
	if c.Request().TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request().Host
}

// formRevokeClient answers a revoke button: back to the page, with a notice.
func (m *Module) formRevokeClient(c echo.Context) error {
	name := c.Param("name")
	err := m.auth.RevokeClient(name)
	if e, ok := apierr.As(err); ok && e.Code == apierr.NotFound {
		return m.renderIndex(c, http.StatusNotFound, "", "There is no client named "+name+".", "")
	}
	if err != nil {
		return err
	}
	// 303: the browser follows with a GET, so reloading the page does not
	// post the form again.
	return c.Redirect(http.StatusSeeOther, "/admin?"+url.Values{"done": {"revoked"}, "client": {name}}.Encode())
}

// confirmed reports whether a dangerous form's confirmation box was ticked;
// the page asks for it so that no single click rotates or re-keys.
func confirmed(c echo.Context) bool { return bodyForm(c).Get("confirm") == "yes" }

func (m *Module) formRotateSecret(c echo.Context) error {
	if !confirmed(c) {
		return m.renderIndex(c, http.StatusBadRequest, "", "Tick the box to confirm rotating the signing secret.", "")
	}
	err := m.auth.RotateSecret()
	if e, ok := apierr.As(err); ok && e.Code == apierr.Conflict {
		return m.renderIndex(c, http.StatusConflict, "", "Could not rotate: "+e.Message+".", "")
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin?done=rotated")
}

// messageData is a page with one message and a link back.
type messageData struct {
	Title, Message string
}

func (m *Module) formChangePassword(c echo.Context) error {
	pw, repeat := bodyForm(c).Get("password"), bodyForm(c).Get("repeat")
	var problem string
	switch {
	case !confirmed(c):
		problem = "Tick the box to confirm changing the password."
	case pw != repeat:
		problem = "The two passwords differ."
	}
	if problem != "" {
		return m.renderIndex(c, http.StatusBadRequest, "", problem, "")
	}
	err := m.auth.SetPassword(pw)
	if e, ok := apierr.As(err); ok && e.Code == apierr.InvalidBody {
		return m.renderIndex(c, http.StatusBadRequest, "", "Could not change the password: "+e.Message+".", "")
	}
	if err != nil {
		return err
	}
	m.log.Warn("owner password changed: owner tokens issued before are now refused", "via", "admin page")
	return m.render(c, http.StatusOK, messagePage(messageData{
		Title: "Password changed",
		Message: "The owner password is changed, and owner tokens issued before are refused. " +
			"Your browser still holds the old password: it will ask for the new one on the next page.",
	}))
}

// css serves the page's stylesheet.
func (m *Module) css(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", m.pages.css)
}
