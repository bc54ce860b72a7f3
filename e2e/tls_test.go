package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pinned is a client that trusts exactly one certificate, by the SHA-256
// fingerprint camd logs, as the phone app does; it needs no CA.
func pinned(fingerprint string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // replaced by the pin below
			VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				got := strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", sum[:]), " ", ":"))
				if got != fingerprint {
					return errors.New("certificate does not match the pinned fingerprint")
				}
				return nil
			},
		}},
	}
}

var fingerprintRE = regexp.MustCompile(`"sha256":"((?:[0-9A-F]{2}:){31}[0-9A-F]{2})"`)

// TestHTTPSAuto: --tls auto makes a self-signed certificate once, logs its
// fingerprint and shows it in /healthz and /admin/status; a pinning client
// runs the whole flow over HTTPS; a wrong pin and a plain client fail; the
// certificate survives a restart.
func TestHTTPSAuto(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, "--tls=auto")
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("URL %s: not HTTPS", p.URL)
	}
	m := fingerprintRE.FindStringSubmatch(p.logs())
	if m == nil {
		t.Fatalf("no fingerprint logged:\n%s", p.logs())
	}
	fp := m[1]
	p.client = pinned(fp)

	if got := p.do("GET", "/healthz", "").field(t, "tls_fingerprint"); got != fp {
		t.Errorf("healthz tls_fingerprint %v, want %s", got, fp)
	}
	if got := p.admin(p.Password, "GET", "/admin/status", "").field(t, "tls_fingerprint"); got != fp {
		t.Errorf("admin status tls_fingerprint %v, want %s", got, fp)
	}
	tok := p.addClient(p.Password, `{"name":"porch-esp32"}`)
	if r := p.do("POST", "/api/ack", `{"count":1}`, bearer(tok)); r.Status != 200 {
		t.Errorf("ack over HTTPS: %d %s", r.Status, r.Body)
	}
	p.login(p.Password)

	for name, c := range map[string]*http.Client{
		"wrong pin":    pinned(strings.Repeat("AB:", 31) + "AB"),
		"system roots": {Timeout: 5 * time.Second},
	} {
		if _, err := c.Get(p.URL + "/healthz"); err == nil {
			t.Errorf("%s: the request succeeded", name)
		}
	}
	// Plain HTTP on the TLS port never reaches the API.
	if r, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + strings.TrimPrefix(p.URL, "https://") + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP served the API on the TLS port")
		}
	}
	p.stop()

	p = start(t, dir, "--tls=auto")
	p.client = pinned(fp)
	if r, err := p.try("GET", "/healthz", ""); err != nil || r.Status != 200 {
		t.Errorf("after a restart the pinned certificate changed: %v", err)
	}
}
