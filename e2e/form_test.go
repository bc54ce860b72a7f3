package e2e

import (
	"net/http"
	"regexp"
	"strings"
)

var csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// pageForm submits one of the admin page's forms the way a browser does:
// it loads the page (Basic auth, text/html), takes the signed CSRF token
// from its cookie and hidden field, and posts body plus the token from
// camd's own origin.
func (p *proc) pageForm(password, path, body string) response {
	p.t.Helper()
	page := p.admin(password, "GET", "/admin", "", "Accept: text/html")
	if page.Status != http.StatusOK {
		p.t.Fatalf("GET /admin for a form token: %d %s", page.Status, page.Body)
	}
	m := csrfFieldRE.FindStringSubmatch(page.Body)
	if m == nil {
		p.t.Fatalf("no _csrf field on the admin page")
	}
	var cookies []string
	for _, c := range (&http.Response{Header: page.Header}).Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if body != "" {
		body += "&"
	}
	return p.admin(password, "POST", path, body+"_csrf="+m[1],
		"Content-Type: application/x-www-form-urlencoded", "Origin: "+p.URL, "Cookie: "+strings.Join(cookies, "; "))
}
