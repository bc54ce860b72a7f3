package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"camd/internal/testlog"
)

// TestAdminPageInBrowser drives the HTML admin page in a real headless
// Chromium: the browser's own Basic auth flow, creating a client and pairing
// it through the QR code, revoking it, and cross-site forms that the CSRF
// check must refuse. Screenshots of each step are kept as artifacts.
func TestAdminPageInBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	p := start(t, t.TempDir())
	pw := p.Password
	owner := p.login(pw) // must outlive the forged rotate-secret below
	b := newBrowser(t, chromium, "browser", p.URL, "owner", pw)

	// The page itself.
	b.run("open /admin", chromedp.Navigate(p.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("greeting")))
	b.shot("01-admin.png")
	if got := strings.TrimSpace(b.text("#greeting")); got != "hi owner" {
		t.Errorf("#greeting = %q, want %q", got, "hi owner")
	}
	if n := b.challenges.Load(); n < 1 {
		t.Fatal("no Basic auth challenge answered: the browser never went through its native auth flow")
	} else {
		t.Logf("%d Basic auth challenges answered", n)
	}
	// The page's parts, one of each; no script anywhere.
	for css, want := range map[string]int{
		"script": 0,
		`link[rel="stylesheet"][href="/admin/assets/admin.css"]`: 1,
		"dl#status":                              1,
		"section#secret code#secret-fingerprint": 1,
		"section#last-ack":                       1,
		`#create-client input[type="hidden"][name="_csrf"]`:                        1,
		`#create-client input[name="scopes"][value="ack"]:checked`:                 1,
		`#create-client input[name="scopes"][value="ack:read"]:not(:checked)`:      1,
		`details #rotate-secret input#rotate-confirm[name="confirm"][value="yes"]`: 1,
		`details #rotate-secret button[type="submit"]`:                             1,
		`details #change-password #new-password`:                                   1,
		`details #change-password #repeat-password`:                                1,
		`details #change-password input#password-confirm[type="checkbox"]`:         1,
	} {
		if n := b.count(css); n != want {
			t.Errorf("%s: %d on the page, want %d", css, n, want)
		}
	}

	// Create a client with both scopes; the answer shows its token once.
	b.run("fill the create form",
		chromedp.SendKeys(chromedp.ID("client-name"), "porch-phone"),
		chromedp.Click(chromedp.CSS(`#create-client input[name="scopes"][value="ack:read"]`)))
	for _, scope := range []string{"ack", "ack:read"} {
		sel := chromedp.CSS(`#create-client input[name="scopes"][value="` + scope + `"]`)
		if !get(b, "scope "+scope, chromedp.JavascriptAttribute[bool](sel, "checked")) {
			t.Errorf("scope %s not ticked", scope)
		}
	}
	resp := submit(b, "create client", chromedp.ID("create"))
	b.run("created page", chromedp.WaitVisible(chromedp.ID("token")))
	b.shot("02-created.png")
	if resp.Status != http.StatusCreated || header(resp, "Cache-Control") != "no-store" {
		t.Errorf("created page: %d, Cache-Control %q; want 201 and no-store", resp.Status, header(resp, "Cache-Control"))
	}
	tok := b.value("token")
	if !get(b, "#token readonly", chromedp.AttributeValue(chromedp.ID("token"), "readonly")).Exists {
		t.Error("#token is not readonly")
	}
	want := map[string]any{
		"type": "camd-pairing", "v": float64(1), "url": p.URL, "client": "porch-phone",
		"scopes": []any{"ack", "ack:read"}, "token": tok,
	}
	qr := decodeQR(t, b.attr("#qr", "src"))
	for name, text := range map[string]string{"QR code": qr, "#pairing": b.text("#pairing")} {
		var got map[string]any
		if err := json.Unmarshal([]byte(text), &got); err != nil {
			t.Errorf("%s payload is not JSON: %v\n%s", name, err, text)
		} else if !reflect.DeepEqual(got, want) { // no tls_sha256 over plain HTTP
			t.Errorf("%s payload = %v\nwant %v", name, got, want)
		}
	}
	if tok == "" {
		t.Fatal("the created page shows no token")
	}
	if r := p.do("POST", "/api/ack", `{"count":3}`, bearer(tok)); r.Status != http.StatusOK || r.field(t, "user") != "client:porch-phone" {
		t.Fatalf("ack with the token from the page: %d %s", r.Status, r.Body)
	}

	// Revoke it from its row; the token dies at once.
	row := `tr[data-client="porch-phone"]`
	b.run("back to /admin", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.CSS(row)))
	resp = submit(b, "revoke", chromedp.CSS(row+` form.revoke button[type="submit"]`))
	b.run("revoked page", chromedp.WaitVisible(chromedp.ID("notice")))
	b.shot("03-revoked.png")
	if u, err := url.Parse(resp.URL); err != nil || resp.Status != http.StatusOK || u.Path != "/admin" ||
		u.Query().Get("done") != "revoked" || u.Query().Get("client") != "porch-phone" {
		t.Errorf("after revoke: %d at %s, want 200 at /admin?done=revoked&client=porch-phone", resp.Status, resp.URL)
	}
	t.Logf("notice: %q", b.text("#notice"))
	if n := b.count(row); n != 0 {
		t.Errorf("the revoked client still has %d rows", n)
	}
	if r := p.do("POST", "/api/ack", `{"count":4}`, bearer(tok)); r.Status != http.StatusUnauthorized {
		t.Errorf("ack with the revoked token: %d %s", r.Status, r.Body)
	}

	// Forms on another site post to camd with the browser's cached
	// credentials; the CSRF check must refuse them and change nothing.
	evil := evilSite(t, p.URL)
	forgeries := []struct {
		name, shot string
		check      func(t *testing.T)
	}{
		{"create-client", "04-forged.png", func(t *testing.T) {
			if r := p.admin(pw, "GET", "/admin/clients", ""); r.Status != 200 || strings.Contains(r.Body, "evil") {
				t.Errorf("clients after the forged form: %d %s", r.Status, r.Body)
			}
		}},
		{"rotate-secret", "05-forged-rotate.png", func(t *testing.T) {
			if r := p.do("POST", "/api/ack", `{"count":5}`, bearer(owner)); r.Status != http.StatusOK {
				t.Errorf("owner token after the forged rotation: %d %s: the secret was rotated", r.Status, r.Body)
			}
		}},
	}
	for _, f := range forgeries {
		t.Run("forged "+f.name, func(t *testing.T) {
			b := b.in(t)
			b.run("open the forged form", chromedp.Navigate(evil+"/"+f.name), chromedp.WaitVisible(chromedp.ID("go")))
			// The probe shows JavaScript is off in the tab, as the admin
			// page's own flows above ran without it.
			if js := b.text("#js"); js != "off" {
				t.Errorf("a page script ran (#js = %q): JavaScript is not disabled", js)
			}
			resp := submit(b, "forged "+f.name, chromedp.ID("go"))
			b.shot(f.shot)
			body := b.text("body")
			var e struct{ Error string }
			if resp.Status != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil ||
				!strings.Contains(strings.ToLower(e.Error), "csrf") {
				t.Errorf("forged POST: %d %.300q, want 403 with a JSON error about CSRF", resp.Status, body)
			}
			f.check(t)
		})
	}

	// The two remaining admin tasks, each behind its confirmation box.
	t.Run("rotate secret", func(t *testing.T) {
		b := b.in(t)
		b.run("open /admin", chromedp.Navigate(p.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("greeting")))
		before := b.text("#secret-fingerprint")
		b.run("confirm rotation",
			chromedp.Click(chromedp.CSS("#secret summary")),
			chromedp.WaitVisible(chromedp.ID("rotate-confirm")),
			chromedp.Click(chromedp.ID("rotate-confirm")))
		resp := submit(b, "rotate", chromedp.CSS(`#rotate-secret button[type="submit"]`))
		b.run("rotated page", chromedp.WaitVisible(chromedp.ID("notice")))
		b.shot("06-rotated.png")
		if after := b.text("#secret-fingerprint"); resp.Status != http.StatusOK || after == before {
			t.Errorf("after rotation: %d, secret fingerprint %s (was %s)", resp.Status, after, before)
		}
		if r := p.do("POST", "/api/ack", `{"count":6}`, bearer(owner)); r.Status != http.StatusUnauthorized {
			t.Errorf("owner token after rotation: %d %s, want 401", r.Status, r.Body)
		}
	})
	t.Run("change password", func(t *testing.T) {
		b := b.in(t)
		const newPW = "a new owner password"
		b.run("open /admin", chromedp.Navigate(p.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("greeting")))
		b.run("fill the password form",
			chromedp.Click(chromedp.CSS("#password summary")),
			chromedp.WaitVisible(chromedp.ID("new-password")),
			chromedp.SendKeys(chromedp.ID("new-password"), newPW),
			chromedp.SendKeys(chromedp.ID("repeat-password"), newPW),
			chromedp.Click(chromedp.ID("password-confirm")))
		resp := submit(b, "change password", chromedp.CSS(`#change-password button[type="submit"]`))
		b.run("changed page", chromedp.WaitVisible(chromedp.ID("notice")))
		b.shot("07-password-changed.png")
		if resp.Status != http.StatusOK {
			t.Errorf("change password: %d", resp.Status)
		}
		// The browser still sends the old password; camd refuses it, and
		// the browser asks again, now answered with the new one.
		b.setPassword(newPW)
		asked := b.challenges.Load()
		b.run("back to /admin", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.ID("greeting")))
		if b.challenges.Load() == asked {
			t.Error("no new Basic auth challenge after the password change")
		}
		for _, tc := range []struct {
			pw   string
			want int
		}{{pw, http.StatusUnauthorized}, {newPW, http.StatusOK}} {
			if r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+tc.pw+`"}`); r.Status != tc.want {
				t.Errorf("login with %q: %d, want %d", tc.pw, r.Status, tc.want)
			}
		}
	})

	// The security headers, from Go rather than the browser.
	t.Run("headers", func(t *testing.T) { checkAdminHeaders(t, p, "a new owner password") })
}

// TestAdminPagePlainHTTPInBrowser reproduces issue 13's forged form in a
// real Chromium, on a cam as the owner reaches it on the LAN: camd over plain
// HTTP at a name that is not loopback (cam.test, mapped to 127.0.0.1 inside
// Chromium only), where Chromium sends no Sec-Fetch-Site. A page on another
// port of the same host plants a camd_csrf cookie with a longer path, which
// shadows camd's own (cookies are not separated by port), and its form posts
// the password change with the matching _csrf field, while the browser holds
// the owner's Basic credentials. camd must refuse it and keep the password;
// the owner's own forms must keep working over plain HTTP, planted cookie
// and all.
func TestAdminPagePlainHTTPInBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	p := start(t, t.TempDir())
	pw := p.Password
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	cam := "http://cam.test:" + u.Port()
	evil := plantingSite(t, cam+"/admin/ui/password")
	b := newBrowser(t, chromium, "browser-plain-http", cam, "owner", pw,
		chromedp.Flag("host-resolver-rules", "MAP cam.test 127.0.0.1"))

	// The owner's own form works on this origin.
	b.run("open /admin", chromedp.Navigate(cam+"/admin"), chromedp.WaitVisible(chromedp.ID("greeting")))
	if n := b.challenges.Load(); n < 1 {
		t.Fatal("no Basic auth challenge answered for " + cam)
	}
	createClient(b, p, "porch-phone", 1)
	b.shot("01-created.png")

	// The attacker's page, on another port of the cam's host.
	b.run("open the planting page", chromedp.Navigate(evil.url+"/plant"), chromedp.WaitVisible(chromedp.ID("go")))
	if got := evil.fetchSite.Load(); got == nil || *got != "" {
		t.Fatalf("Chromium sent Sec-Fetch-Site %v to %s: the origin is treated as secure, and this test would not test plain HTTP", got, evil.url)
	}
	// The attack's premise: the browser will send the planted cookie, and
	// first, to camd's form.
	jar := b.cookies(cam + "/admin/ui/password")
	if len(jar) != 2 || jar[0].Value != plantedToken || jar[0].Path != "/admin/ui" || jar[1].Path != "/admin" {
		t.Fatalf("cookies for camd's form: %s; want the planted one, then camd's", cookieList(jar))
	}
	asked := b.challenges.Load()
	resp := submit(b, "forged password change", chromedp.ID("go"))
	b.shot("02-forged.png")
	body := b.text("body")
	var e struct{ Error string }
	if resp.Status != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil ||
		!strings.Contains(strings.ToLower(e.Error), "csrf") {
		t.Errorf("forged POST /admin/ui/password: %d %.300q, want 403 with a JSON error about CSRF", resp.Status, body)
	}
	if n := b.challenges.Load() - asked; n != 0 {
		t.Logf("%d auth challenges during the forged post", n)
	}
	for _, tc := range []struct {
		pw   string
		want int
	}{{pw, http.StatusOK}, {forgedPassword, http.StatusUnauthorized}} {
		if r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+tc.pw+`"}`); r.Status != tc.want {
			t.Errorf("login with %q after the forged post: %d, want %d", tc.pw, r.Status, tc.want)
		}
	}

	// The planted cookie stays in the browser, ahead of camd's; the owner
	// is not locked out of the forms by it.
	b.run("back to /admin", chromedp.Navigate(cam+"/admin"), chromedp.WaitVisible(chromedp.ID("greeting")))
	if jar := b.cookies(cam + "/admin/ui/clients"); len(jar) != 2 || jar[0].Value != plantedToken {
		t.Errorf("cookies for camd's form: %s; want the planted one still first", cookieList(jar))
	}
	createClient(b, p, "gate-esp32", 2)
	b.shot("03-created-after.png")
}

// createClient creates a client with the page's form, in a tab showing the
// page, and checks its token acks as count.
func createClient(b *browser, p *proc, name string, count int) {
	b.t.Helper()
	b.run("fill the create form", chromedp.SendKeys(chromedp.ID("client-name"), name))
	resp := submit(b, "create "+name, chromedp.ID("create"))
	if resp.Status != http.StatusCreated {
		b.t.Fatalf("create %s: %d %.300q, want 201", name, resp.Status, b.text("body"))
	}
	b.run("created page", chromedp.WaitVisible(chromedp.ID("token")))
	tok := b.value("token")
	if r := p.do("POST", "/api/ack", fmt.Sprintf(`{"count":%d}`, count), bearer(tok)); r.Status != http.StatusOK || r.field(b.t, "user") != "client:"+name {
		b.t.Errorf("ack with %s's token from the page: %d %s", name, r.Status, r.Body)
	}
}

// cookies returns the cookies the browser would send to u, in the order it
// sends them.
func (b *browser) cookies(u string) []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		b.t.Fatalf("cookies for %s: %v", u, err)
	}
	// Chromium lists them as it sends them: longer paths first.
	slices.SortStableFunc(res.Cookies, func(a, b *network.Cookie) int { return len(b.Path) - len(a.Path) })
	return res.Cookies
}

func cookieList(cs []*network.Cookie) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%.12s…; Path=%s", c.Name, c.Value, c.Path))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

const (
	// plantedToken has the form of camd's CSRF tokens (64 base64url
	// characters), but camd did not sign it.
	plantedToken = "Zm9yZ2VkLWJ5LWFub3RoZXItc2VydmljZS1vbi10aGlzLWNhbXMtaG9zdC0xMjM0"
	// forgedPassword is what the forged form would set.
	forgedPassword = "the attacker's password"
)

// plantingSite is the attacker of issue 13: a server on another port of the
// cam's host. Its /plant page sets camd_csrf=plantedToken for the cam's host
// with Path=/admin/ui, longer than camd's /admin, and holds a form that posts
// a password change to action with the same _csrf.
type planter struct {
	url string
	// fetchSite is the Sec-Fetch-Site of the last request, "" none.
	fetchSite atomic.Pointer[string]
}

func plantingSite(t *testing.T, action string) *planter {
	t.Helper()
	page := template.Must(template.New("").Parse(`<!doctype html>
<title>Cam firmware update</title>
<form method="post" action="{{.}}">
<input type="hidden" name="_csrf" value="` + plantedToken + `">
<input type="hidden" name="password" value="` + forgedPassword + `">
<input type="hidden" name="repeat" value="` + forgedPassword + `">
<input type="hidden" name="confirm" value="yes">
<button id="go" type="submit">Update</button>
</form>`))
	u, err := url.Parse(action)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &planter{url: "http://" + u.Hostname() + ":" + port}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			site := r.Header.Get("Sec-Fetch-Site")
			s.fetchSite.Store(&site)
			if r.URL.Path != "/plant" {
				http.NotFound(w, r)
				return
			}
			// No SameSite: Lax by default, and the form's post to
			// another port of this host is same-site.
			http.SetCookie(w, &http.Cookie{Name: "camd_csrf", Value: plantedToken, Path: "/admin/ui"})
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := page.Execute(w, action); err != nil {
				t.Errorf("planting page: %v", err)
			}
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// browser is one headless Chromium with one tab, answering camd's Basic auth
// challenges itself as a user would in the browser's login dialog.
type browser struct {
	t          *testing.T
	ctx        context.Context
	dir        string        // where screenshots go
	challenges *atomic.Int32 // answered with the credentials
	// password is what the "dialog" answers with; the test changes it
	// after changing the owner password, as the owner would type the new one.
	password *atomic.Pointer[string]
}

// setPassword changes the password the browser answers challenges with.
func (b *browser) setPassword(pw string) { b.password.Store(&pw) }

// in returns b for a subtest, which must fail on its own goroutine.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// newBrowser starts Chromium for the test, with its screenshots in the
// artifacts subdirectory shots and any extra flags. Every request of the tab
// passes through the Fetch domain, so auth challenges reach the test instead
// of a dialog; only camd's own origin gets the credentials.
func newBrowser(t *testing.T, path, shots, origin, user, pass string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	b := &browser{t: t, dir: screenshotDir(t, shots), challenges: new(atomic.Int32), password: new(atomic.Pointer[string])}
	b.setPassword(pass)
	// The whole browser session is bounded; the test's own context would
	// end before the cleanups that save a screenshot of a failure.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 90*time.Second)
	out := &testlog.Buffer{}
	// A minimal set rather than chromedp's defaults: these are the flags
	// known to work here (shared/notes/environment.md); without the
	// background-networking ones Chromium floods the closed network.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its singleton socket goes to $TMPDIR; keep it with the test's files.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.WindowSize(1000, 900),
		chromedp.CombinedOutput(out),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b.ctx = ctx
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit, before t.TempDir is removed
		cancelTimeout()
		wg.Wait()
		if t.Failed() {
			t.Logf("chromium output:\n%s", quiet(out.String()))
		}
	})

	// Subscribe before enabling Fetch, so no paused request is missed.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	auths := chromedp.Events(ctx, fetch.AuthRequired)
	wg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return // the browser is gone
			}
			_, err := chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			if err != nil && ctx.Err() == nil {
				t.Logf("continue %s: %v", ev.Request.URL, err) // e.g. a request the tab canceled
			}
		}
	})
	wg.Go(func() {
		for ev, err := range auths {
			if err != nil {
				return
			}
			answer := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
			if c := ev.AuthChallenge; c.Origin == origin && c.Scheme == "basic" && c.Realm == "Backyard cam admin" {
				answer = &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user, Password: *b.password.Load(),
				}
				b.challenges.Add(1)
			} else {
				t.Errorf("auth challenge from %s (%s, realm %q): not camd's", ev.AuthChallenge.Origin, ev.AuthChallenge.Scheme, ev.AuthChallenge.Realm)
			}
			_, err := chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: answer})
			if err != nil && ctx.Err() == nil {
				t.Logf("answer the auth challenge of %s: %v", ev.Request.URL, err)
			}
		}
	})
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true)}); err != nil {
		t.Fatalf("start chromium and enable Fetch: %v\n%s", err, quiet(out.String()))
	}
	// The page must work with JavaScript off: every task is a plain form.
	// (chromedp itself still evaluates its queries through the protocol.)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("disable JavaScript: %v", err)
	}
	// Registered last, so it runs first, while the browser is still there.
	t.Cleanup(func() {
		if t.Failed() {
			b.shot("failed.png")
		}
	})
	return b
}

// stepTimeout bounds one step, well inside the browser's 90 s, so a page
// that never shows an element fails with the browser still there for the
// screenshot of the failure.
const stepTimeout = 20 * time.Second

// run runs steps in the tab and stops the test on an error.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, and stops the test on an error.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// submit clicks a submit button and returns the response of the document it
// leads to, after any redirects, once that document has loaded.
func submit[S chromedp.Selectable](b *browser, what string, button S) *network.Response {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(button))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp == nil {
		b.t.Fatalf("%s: no document response", what)
	}
	return resp
}

func (b *browser) text(css string) string {
	b.t.Helper()
	return get(b, "text of "+css, chromedp.TextContent(chromedp.CSS(css)))
}

func (b *browser) value(id string) string {
	b.t.Helper()
	return get(b, "value of #"+id, chromedp.Value(chromedp.ID(id)))
}

func (b *browser) attr(css, name string) string {
	b.t.Helper()
	a := get(b, name+" of "+css, chromedp.AttributeValue(chromedp.CSS(css), name))
	if !a.Exists {
		b.t.Errorf("%s has no %s attribute", css, name)
	}
	return a.Value
}

// count returns how many elements match css, without waiting for one.
func (b *browser) count(css string) int {
	b.t.Helper()
	return len(get(b, "count "+css, chromedp.Nodes(chromedp.CSSAll(css), chromedp.AtLeast(0))))
}

// shot saves a screenshot of the whole page. A failure to take one is an
// error, not fatal, so it never hides the assertion that follows.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

// screenshotDir is $CAMD_ARTIFACTS/shots, or camd-artifacts/shots in the
// temporary directory; CI keeps the former.
func screenshotDir(t *testing.T, shots string) string {
	t.Helper()
	root := os.Getenv("CAMD_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "camd-artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(root, shots))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("screenshot directory: %v", err)
	}
	// A failed.png of an earlier run must not pass for this run's.
	old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	fmt.Printf("browser screenshots: %s\n", dir)
	return dir
}

// header returns a response header of the browser, whose names keep the
// server's spelling.
func header(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// decodeQR decodes the QR code in a data:image/png;base64 URL.
func decodeQR(t *testing.T, src string) string {
	t.Helper()
	data, ok := strings.CutPrefix(src, "data:image/png;base64,")
	if !ok {
		t.Fatalf("#qr src is not a base64 PNG data URL: %.60q", src)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("#qr src: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("#qr image: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("#qr bitmap: %v", err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode the QR code: %v", err)
	}
	return res.GetText()
}

// evilSite serves, from 127.0.0.2 (another site than camd's 127.0.0.1; other
// ports on one host are the same site), forms that post to camd's admin UI
// with a made-up CSRF token. It returns its base URL.
func evilSite(t *testing.T, camd string) string {
	t.Helper()
	page := template.Must(template.New("").Parse(`<!doctype html>
<title>Win a prize</title>
<form method="post" action="{{.Action}}">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button id="go" type="submit">Claim</button>
</form>
<p id="js">off</p><script>document.getElementById("js").textContent = "on"</script>`))
	forms := map[string]struct {
		action string
		fields map[string]string
	}{
		"/create-client": {"/admin/ui/clients", map[string]string{"name": "evil", "scopes": "ack", "_csrf": "forged"}},
		"/rotate-secret": {"/admin/ui/rotate-secret", map[string]string{"confirm": "yes", "_csrf": "forged"}},
	}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			form, ok := forms[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := page.Execute(w, map[string]any{"Action": camd + form.action, "Fields": form.fields}); err != nil {
				t.Errorf("evil page: %v", err)
			}
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// checkAdminHeaders checks, with Go's client rather than the browser, what
// the page promises a browser: HTML only behind Basic auth, a CSP without
// inline scripts, no framing, a referrer policy, and public CSS.
func checkAdminHeaders(t *testing.T, p *proc, pw string) {
	get := func(path string, headers ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", p.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return res, string(body)
	}
	const html = "Accept: text/html,application/xhtml+xml,*/*;q=0.8"

	if res, _ := get("/admin", html); res.StatusCode != http.StatusUnauthorized ||
		res.Header.Get("WWW-Authenticate") != `Basic realm="Backyard cam admin"` {
		t.Errorf("page without credentials: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	res, body := get("/admin", html, basicAuth("owner", pw))
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=UTF-8" {
		t.Errorf("page: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Error("the page has a script element")
	}
	csp := res.Header.Get("Content-Security-Policy")
	if src := cspSources(csp, "script-src"); src == nil || strings.Contains(strings.Join(src, " "), "'unsafe-inline'") {
		t.Errorf("Content-Security-Policy %q: want one that forbids inline scripts", csp)
	}
	if v := res.Header.Get("X-Frame-Options"); v != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", v)
	}
	if res.Header.Get("Referrer-Policy") == "" {
		t.Error("no Referrer-Policy")
	}
	if res, body := get("/admin", basicAuth("owner", pw)); res.StatusCode != 200 || body != "hi owner" {
		t.Errorf("plain client: %d %q, want hi owner", res.StatusCode, body)
	}
	if res, _ := get("/admin/assets/admin.css"); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet without credentials: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// cspSources returns the sources of a CSP directive, falling back to
// default-src as browsers do; nil when neither is set.
func cspSources(csp, directive string) []string {
	var fallback []string
	for _, d := range strings.Split(csp, ";") {
		fields := strings.Fields(d)
		if len(fields) == 0 {
			continue
		}
		switch strings.ToLower(fields[0]) {
		case directive:
			return append([]string{}, fields[1:]...)
		case "default-src":
			fallback = append([]string{}, fields[1:]...)
		}
	}
	return fallback
}

// quiet drops the noise of Chromium on a machine without D-Bus.
func quiet(output string) string {
	var lines []string
	for l := range strings.SplitSeq(output, "\n") {
		if !strings.Contains(l, "dbus") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
