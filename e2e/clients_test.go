package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const insufficientScope = `Bearer realm="camd", error="insufficient_scope", scope="ack"`

// admin sends an admin API request with the owner's Basic credentials.
func (p *proc) admin(password, method, path, body string, headers ...string) response {
	p.t.Helper()
	return p.do(method, path, body, append(headers, basicAuth("owner", password))...)
}

// addClient creates a client through the admin API and returns its token.
func (p *proc) addClient(password, body string) string {
	p.t.Helper()
	r := p.admin(password, "POST", "/admin/clients", body)
	if r.Status != http.StatusCreated {
		p.t.Fatalf("create client %s: %d %s", body, r.Status, r.Body)
	}
	tok, _ := r.field(p.t, "token").(string)
	if tok == "" {
		p.t.Fatalf("no token in %s", r.Body)
	}
	return tok
}

// TestClientLifecycle: create a client, use its token with one header,
// list it (never its token), revoke it, and the very next request is 401.
func TestClientLifecycle(t *testing.T) {
	p := start(t, t.TempDir())
	pw := p.Password
	r := p.admin(pw, "POST", "/admin/clients", `{"name":"porch-esp32","scopes":["ack"]}`)
	if r.Status != http.StatusCreated || r.field(t, "name") != "porch-esp32" || r.field(t, "created_at") == nil ||
		r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %v %s", r.Status, r.Header, r.Body)
	}
	tok := r.field(t, "token").(string)

	if r := p.do("POST", "/api/ack", `{"count":4}`, bearer(tok)); r.Status != 200 || r.field(t, "user") != "client:porch-esp32" {
		t.Fatalf("ack with the client token: %d %s", r.Status, r.Body)
	}
	r = p.admin(pw, "GET", "/admin/clients", "")
	var list []struct {
		Name     string
		Scopes   []string
		LastUsed *struct{ At, Addr string } `json:"last_used"`
	}
	if err := json.Unmarshal([]byte(r.Body), &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	if c := list[0]; c.Name != "porch-esp32" || len(c.Scopes) != 1 || c.LastUsed == nil || c.LastUsed.Addr != "127.0.0.1" {
		t.Errorf("listed %+v: want the client, its scope, last used from 127.0.0.1", c)
	}
	if strings.Contains(r.Body, tok) || strings.Contains(r.Body, "token") {
		t.Errorf("the list shows a token: %s", r.Body)
	}

	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"duplicate", "POST", "/admin/clients", `{"name":"porch-esp32"}`, 409},
		{"bad name", "POST", "/admin/clients", `{"name":"porch esp32"}`, 400},
		{"name too long", "POST", "/admin/clients", `{"name":"` + strings.Repeat("a", 65) + `"}`, 400},
		{"unknown scope", "POST", "/admin/clients", `{"name":"x","scopes":["admin"]}`, 400},
		{"scopes not a list", "POST", "/admin/clients", `{"name":"x","scopes":"ack"}`, 400},
		{"missing name", "POST", "/admin/clients", `{}`, 400},
		{"delete unknown", "DELETE", "/admin/clients/nope", "", 404},
		{"revoke", "DELETE", "/admin/clients/porch-esp32", "", 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := p.admin(pw, tc.method, tc.path, tc.body); r.Status != tc.status {
				t.Errorf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
		})
	}
	r = p.do("POST", "/api/ack", `{"count":5}`, bearer(tok))
	if !refusedAs(t, r, "token_revoked") {
		t.Errorf("revoked token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// The same name again is a new client: the old token stays dead.
	p.addClient(pw, `{"name":"porch-esp32"}`)
	if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != http.StatusUnauthorized {
		t.Errorf("old token after re-creating the name: %d", r.Status)
	}
	if r := p.do("GET", "/admin/clients", ""); r.Status != 401 {
		t.Errorf("admin API without credentials: %d", r.Status)
	}
}

// TestClientScope: a token only reaches routes its scopes name.
func TestClientScope(t *testing.T) {
	p := start(t, t.TempDir())
	reader := p.addClient(p.Password, `{"name":"status-led","scopes":["ack:read"]}`)
	r := p.do("POST", "/api/ack", `{"count":1}`, bearer(reader))
	if r.Status != http.StatusForbidden || r.Header.Get("WWW-Authenticate") != insufficientScope {
		t.Errorf("post with ack:read: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
	}
	p.do("POST", "/api/ack", `{"count":1}`, bearer(p.login(p.Password)))
	if r := p.do("GET", "/api/ack", "", bearer(reader)); r.Status != 200 {
		t.Errorf("read with ack:read: %d %s", r.Status, r.Body)
	}
}

// TestRotateSecret: after rotation every owner and client token is 401 and
// new logins work, also after a restart.
func TestRotateSecret(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	pw := p.Password
	owner, client := p.login(pw), p.addClient(pw, `{"name":"worker"}`)
	if r := p.admin(pw, "POST", "/admin/rotate-secret", ""); r.Status != 415 {
		t.Errorf("rotate without JSON: %d", r.Status)
	}
	if r := p.admin(pw, "POST", "/admin/rotate-secret", "{}"); r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	for name, tok := range map[string]string{"owner": owner, "client": client} {
		if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != http.StatusUnauthorized {
			t.Errorf("%s token after rotation: %d", name, r.Status)
		}
	}
	fresh := p.login(pw)
	if !strings.Contains(p.logs(), "rotated the signing secret") {
		t.Error("rotation was not logged")
	}
	p.stop()
	p = start(t, dir)
	if r := p.do("GET", "/api/ack", "", bearer(fresh)); r.Status != http.StatusNotFound {
		t.Errorf("token from after rotation, after a restart: %d %s", r.Status, r.Body)
	}
}

// TestPasswordChange: the admin API and camd passwd each refuse owner tokens
// issued before the change, and leave client tokens alone.
func TestPasswordChange(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	old := p.Password
	owner, client := p.login(old), p.addClient(old, `{"name":"worker"}`)

	if r := p.admin(old, "POST", "/admin/password", `{"password":"short"}`); r.Status != 400 {
		t.Errorf("short password: %d %s", r.Status, r.Body)
	}
	if r := p.admin(old, "POST", "/admin/password", `{"password":"a brand new one"}`); r.Status != 204 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if r := p.do("GET", "/api/ack", "", bearer(owner)); r.Status != http.StatusUnauthorized {
		t.Errorf("owner token from before the change: %d", r.Status)
	}
	if r := p.do("GET", "/api/ack", "", bearer(client)); r.Status != http.StatusNotFound {
		t.Errorf("client token after the change: %d %s", r.Status, r.Body)
	}
	if r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+old+`"}`); r.Status != 401 {
		t.Errorf("old password: %d", r.Status)
	}
	newer := p.login("a brand new one")
	if r := p.do("GET", "/api/ack", "", bearer(newer)); r.Status != http.StatusNotFound {
		t.Errorf("token issued right after the change: %d %s", r.Status, r.Body)
	}

	// The same through the offline command, against the running server.
	if code, out := run(t, "changed offline\n", "passwd", "--data-dir", dir); code != 0 {
		t.Fatalf("camd passwd: %d %s", code, out)
	}
	if r := p.do("GET", "/api/ack", "", bearer(newer)); r.Status != http.StatusUnauthorized {
		t.Errorf("owner token after camd passwd: %d", r.Status)
	}
	if r := p.do("GET", "/api/ack", "", bearer(client)); r.Status != http.StatusNotFound {
		t.Errorf("client token after camd passwd: %d", r.Status)
	}
	p.login("changed offline")
}

// TestOfflineClientCLI: camd client add/list/revoke on the data directory of
// a running server take effect without a restart.
func TestOfflineClientCLI(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	pw := p.Password
	code, out := run(t, "", "client", "add", "cloud-worker", "--scope", "ack", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("client add: %d %s", code, out)
	}
	var tok string
	for _, line := range strings.Split(out, "\n") {
		if strings.Count(line, ".") == 2 && strings.HasPrefix(line, "eyJ") {
			tok = line
		}
	}
	if r := p.do("POST", "/api/ack", `{"count":9}`, bearer(tok)); r.Status != 200 {
		t.Fatalf("token from camd client add: %d %s", r.Status, r.Body)
	}
	if code, out := run(t, "", "client", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "cloud-worker") || strings.Contains(out, tok) {
		t.Errorf("client list: %d %s", code, out)
	}
	// "Last used" is kept in memory and written at shutdown (and every
	// 10 minutes), where the offline list finds it.
	p.stop()
	if code, out := run(t, "", "client", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("client list after shutdown lacks last use: %d %s", code, out)
	}
	p = start(t, dir)
	if code, out := run(t, "", "client", "add", "cloud-worker", "--data-dir", dir); code != 1 || !strings.Contains(out, "exists") {
		t.Errorf("duplicate add: %d %s", code, out)
	}
	if code, out := run(t, "", "client", "revoke", "cloud-worker", "--data-dir", dir); code != 0 {
		t.Fatalf("client revoke: %d %s", code, out)
	}
	if r := p.do("POST", "/api/ack", `{"count":10}`, bearer(tok)); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked offline, next request: %d", r.Status)
	}
	if r := p.admin(pw, "GET", "/admin/clients", ""); r.Body != "[]\n" && r.Body != "[]" {
		t.Errorf("server still lists the client: %s", r.Body)
	}
}

// TestAdminRefusesForms: a cross-site form can carry the browser's cached
// Basic credentials, but not a JSON body: state changes refuse it.
func TestAdminRefusesForms(t *testing.T) {
	p := start(t, t.TempDir())
	pw := p.Password
	forms := []string{"Content-Type: application/x-www-form-urlencoded", "Content-Type: text/plain", "Content-Type: multipart/form-data; boundary=x"}
	for _, ct := range forms {
		for _, path := range []string{"/admin/clients", "/admin/password", "/admin/rotate-secret"} {
			r := p.admin(pw, "POST", path, `{"name":"evil","password":"attacker-chosen"}`, ct)
			if r.Status != http.StatusUnsupportedMediaType {
				t.Errorf("%s with %s: %d %s", path, ct, r.Status, r.Body)
			}
		}
	}
	if r := p.admin(pw, "GET", "/admin/clients", ""); strings.Contains(r.Body, "evil") {
		t.Errorf("a form created a client: %s", r.Body)
	}
	p.login(pw) // the password did not change
}
