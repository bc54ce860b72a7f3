package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"camd/pairing"
	"camd/platform/ntpclock/ntptest"
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
	r := p.pageForm(p.Password, "/admin/ui/clients", "name=owner-phone&scopes=ack")
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

// plant1970 writes a key and a certificate for it valid from 1969 to 1980
// into dir, as camd made them on a cam that booted at 1970, and returns the
// certificate.
func plant1970(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	boot := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1970), Subject: pkix.Name{CommonName: "camd"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore: boot.Add(-time.Hour), NotAfter: boot.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// served is the certificate camd presents on a new connection.
func served(t *testing.T, url string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true}) // the test inspects it
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// anyCert is a client that takes whatever certificate camd serves, on a
// new connection each time, so that a renewed one is seen at once.
func anyCert() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the test inspects the certificate itself
	}}
}

// TestTLSAutoRenews1970Certificate is issue 13's defect 7: a --tls auto
// certificate made at 1970 (valid 1969 to 1980) is re-signed with the same
// key once camd's clock is trusted: at start when it already is, or once
// the first NTP sync makes it so. The fingerprint camd shows is the served
// certificate's, before and after; the key never changes.
func TestTLSAutoRenews1970Certificate(t *testing.T) {
	t.Run("trusted at start", func(t *testing.T) {
		dir := t.TempDir()
		old := plant1970(t, dir)
		key := readFile(t, filepath.Join(dir, "tls.key"))
		p := start(t, dir, "--tls=auto") // --clock system: trusted at once
		p.client = anyCert()
		got := served(t, p.URL)
		checkRenewed(t, p, old, got)
		m := fingerprintRE.FindStringSubmatch(p.logs())
		if m == nil || m[1] != tlsFingerprint(got) {
			t.Errorf("logged fingerprint %v, want the served %s", m, tlsFingerprint(got))
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, "tls.key")), key) {
			t.Error("tls.key changed")
		}
		p.stop()
		p = start(t, dir, "--tls=auto")
		if again := served(t, p.URL); !bytes.Equal(again.Raw, got.Raw) {
			t.Error("the renewed certificate did not survive a restart")
		}
	})

	t.Run("trusted after the first sync", func(t *testing.T) {
		dir := t.TempDir()
		old := plant1970(t, dir)
		srv := ntptest.Start(t, ntptest.Behaviour{Stratum: 16}) // refused until it is set right
		p := start(t, dir, "--tls=auto", "--clock=ntp", "--ntp-servers="+srv.Addr)
		p.client = anyCert()
		if got := served(t, p.URL); !bytes.Equal(got.Raw, old.Raw) {
			t.Fatal("the certificate changed while the clock was untrusted")
		}
		if fp := p.do("GET", "/healthz", "").field(t, "tls_fingerprint"); fp != tlsFingerprint(old) {
			t.Errorf("healthz tls_fingerprint %v before the sync, want the served %s", fp, tlsFingerprint(old))
		}
		srv.Set(ntptest.Behaviour{})
		p.waitSynced()
		deadline := time.Now().Add(10 * time.Second)
		got := served(t, p.URL)
		for bytes.Equal(got.Raw, old.Raw) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			got = served(t, p.URL)
		}
		checkRenewed(t, p, old, got)
		if !strings.Contains(p.logs(), "renewed the self-signed TLS certificate") || !strings.Contains(p.logs(), tlsFingerprint(got)) {
			t.Errorf("the renewal and the new fingerprint were not logged:\n%s", p.logs())
		}
	})
}

// checkRenewed checks that got, the served certificate, covers now with the
// key of old, and that camd shows its fingerprint everywhere.
func checkRenewed(t *testing.T, p *proc, old, got *x509.Certificate) {
	t.Helper()
	now := time.Now()
	t.Logf("before: valid %s to %s, SHA-256 %s", old.NotBefore.Format(time.RFC3339), old.NotAfter.Format(time.RFC3339), tlsFingerprint(old))
	t.Logf("after:  valid %s to %s, SHA-256 %s", got.NotBefore.Format(time.RFC3339), got.NotAfter.Format(time.RFC3339), tlsFingerprint(got))
	if now.Before(got.NotBefore) || now.After(got.NotAfter) {
		t.Errorf("served certificate valid %s to %s, does not cover now", got.NotBefore, got.NotAfter)
	}
	if !bytes.Equal(got.RawSubjectPublicKeyInfo, old.RawSubjectPublicKeyInfo) {
		t.Error("the renewed certificate has another public key: public-key pins break")
	}
	fp := tlsFingerprint(got)
	if v := p.do("GET", "/healthz", "").field(t, "tls_fingerprint"); v != fp {
		t.Errorf("healthz tls_fingerprint %v, want the served %s", v, fp)
	}
	if v := p.admin(p.Password, "GET", "/admin/status", "").field(t, "tls_fingerprint"); v != fp {
		t.Errorf("admin status tls_fingerprint %v, want the served %s", v, fp)
	}
	// A client pinning the new fingerprint, as one paired now would.
	pin := &proc{t: t, URL: p.URL, client: pinned(fp)}
	if r := pin.do("GET", "/healthz", ""); r.Status != http.StatusOK {
		t.Errorf("pinned to the new fingerprint: %d", r.Status)
	}
}

func tlsFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", sum[:]), " ", ":"))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
