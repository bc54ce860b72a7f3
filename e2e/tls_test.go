package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"camd/pairing"
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
	checkPairingOverHTTPS(t, p, fp)

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

var pairingRE = regexp.MustCompile(`(?s)<pre id="pairing">(.*?)</pre>`)

// checkPairingOverHTTPS creates a client with the admin page's form, as a
// same-origin browser does, and checks the pairing payload the QR code
// carries: an https URL and the fingerprint, which a client built from the
// payload alone pins to reach the API with the token.
func checkPairingOverHTTPS(t *testing.T, p *proc, fp string) {
	t.Helper()
	r := p.admin(p.Password, "POST", "/admin/ui/clients", "name=owner-phone&scopes=ack",
		"Content-Type: application/x-www-form-urlencoded", "Sec-Fetch-Site: same-origin")
	if r.Status != http.StatusCreated {
		t.Fatalf("create client with the form: %d %s", r.Status, r.Body)
	}
	m := pairingRE.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no pairing payload on the page:\n%s", r.Body)
	}
	var got pairing.Payload
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &got); err != nil {
		t.Fatalf("pairing payload %q: %v", m[1], err)
	}
	if got.Type != "camd-pairing" || got.V != 1 || got.URL != p.URL || got.Client != "owner-phone" || got.TLSSHA256 != fp {
		t.Errorf("pairing payload %+v; want url %s and tls_sha256 %s", got, p.URL, fp)
	}
	phone := &proc{t: t, URL: got.URL, client: pinned(got.TLSSHA256)}
	if r := phone.do("POST", "/api/ack", `{"count":2}`, bearer(got.Token)); r.Status != http.StatusOK {
		t.Errorf("ack with the paired token: %d %s", r.Status, r.Body)
	}
}
