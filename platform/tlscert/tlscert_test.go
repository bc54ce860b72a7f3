package tlscert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/datadir"
)

var fixedNow = time.Unix(1700000000, 0)

func now() time.Time { return fixedNow }

// Where bad files go at fixedNow.
const (
	movedKey  = "tls.key.bad-1700000000"
	movedCert = "tls.crt.bad-1700000000"
)

var fingerprintRE = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)

func newDir(t *testing.T) datadir.Dir {
	t.Helper()
	d, err := datadir.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func readFileT(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func entryNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != ".lock" {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// pair is a certificate and key as PEM files hold them.
type pair struct {
	cert, key []byte
	fp        string
}

// generate makes a certificate and key in a directory of their own, through
// LoadOrCreate, to plant elsewhere.
func generate(t *testing.T) pair {
	t.Helper()
	d := newDir(t)
	log, _ := testlog.New()
	c, err := LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatal(err)
	}
	return pair{cert: readFileT(t, d.Join(CertFileName)), key: readFileT(t, d.Join(KeyFileName)), fp: c.Fingerprint}
}

// noKeyInLog fails if the log holds the private key.
func noKeyInLog(t *testing.T, log string, keyPEM []byte) {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("no PEM in key")
	}
	if strings.Contains(log, "PRIVATE KEY") || strings.Contains(log, string(keyPEM)) ||
		strings.Contains(log, hex.EncodeToString(block.Bytes)) {
		t.Errorf("log contains the private key:\n%s", log)
	}
}

// parseCertFile checks that path holds exactly one CERTIFICATE PEM block and
// returns it parsed.
func parseCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(readFileT(t, path))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no CERTIFICATE block", path)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("%s holds more than one PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return cert
}

func TestLoadOrCreateNew(t *testing.T) {
	d := newDir(t)
	log, buf := testlog.New()

	c, err := LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	certPath, keyPath := d.Join(CertFileName), d.Join(KeyFileName)
	if got, want := entryNames(t, d.Path()), []string{CertFileName, KeyFileName}; !slices.Equal(got, want) {
		t.Errorf("data dir holds %q, want %q", got, want)
	}
	if m := mode(t, keyPath); m != 0o600 {
		t.Errorf("key mode %v, want 0600", m)
	}
	if m := mode(t, certPath); m != 0o644 {
		t.Errorf("cert mode %v, want 0644", m)
	}

	// The key: PKCS#8, ECDSA P-256, and the one the certificate is for.
	keyPEM := readFileT(t, keyPath)
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file holds no PKCS#8 PRIVATE KEY block:\n%s", keyPEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse PKCS#8 key: %v", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", k)
	}

	leaf := parseCertFile(t, certPath)
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("certificate key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !pub.Equal(&key.PublicKey) {
		t.Error("certificate is not for the key in the key file")
	}
	if err := leaf.CheckSignatureFrom(leaf); err == nil {
		t.Error("CheckSignatureFrom itself succeeded; a non-CA leaf must not be accepted as an issuer")
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
	if !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		t.Error("issuer differs from subject")
	}
	if leaf.Subject.CommonName != "camd" {
		t.Errorf("CN = %q, want camd", leaf.Subject.CommonName)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive number of at most 128 bits", leaf.SerialNumber)
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA {
		t.Errorf("BasicConstraintsValid = %v, IsCA = %v; want true, false", leaf.BasicConstraintsValid, leaf.IsCA)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want DigitalSignature only", leaf.KeyUsage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want ServerAuth only", leaf.ExtKeyUsage)
	}
	if want := fixedNow.Add(-time.Hour); !leaf.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, want)
	}
	if want := fixedNow.AddDate(10, 0, 0); !leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, want)
	}
	if !c.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("Cert.NotAfter = %v, file says %v", c.NotAfter, leaf.NotAfter)
	}

	// SANs: localhost, the hostname when usable, both loopback addresses.
	wantDNS := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && validHostname(h) && h != "localhost" {
		wantDNS = append(wantDNS, h)
	}
	if !slices.Equal(leaf.DNSNames, wantDNS) {
		t.Errorf("DNS SANs = %q, want %q", leaf.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs = %q, want %q", ips, want)
	}
	// Pinned as its own trust anchor, it verifies as a server certificate
	// for each of those names.
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: fixedNow,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}

	// The fingerprint.
	sum := sha256.Sum256(leaf.Raw)
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); strings.ReplaceAll(c.Fingerprint, ":", "") != want {
		t.Errorf("Fingerprint = %s, want SHA-256 %s", c.Fingerprint, want)
	}
	if !fingerprintRE.MatchString(c.Fingerprint) {
		t.Errorf("Fingerprint %q does not match %s", c.Fingerprint, fingerprintRE)
	}
	if len(c.TLS.Certificate) != 1 || !bytes.Equal(c.TLS.Certificate[0], leaf.Raw) {
		t.Error("Cert.TLS does not hold the certificate from the file")
	}
	if c.TLS.Leaf == nil || !bytes.Equal(c.TLS.Leaf.Raw, leaf.Raw) {
		t.Error("Cert.TLS.Leaf is not the certificate from the file")
	}

	if info := testlog.AtLevel(buf.String(), "INFO"); len(info) != 1 ||
		!strings.Contains(info[0], "created self-signed TLS certificate") || !strings.Contains(info[0], "fingerprint="+c.Fingerprint) {
		t.Errorf("want one INFO line with the new fingerprint, log:\n%s", buf)
	}

	again, err := LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if again.Fingerprint != c.Fingerprint {
		t.Errorf("second call fingerprint %s, first %s", again.Fingerprint, c.Fingerprint)
	}
	if !again.NotAfter.Equal(c.NotAfter) {
		t.Errorf("second call NotAfter %v, first %v", again.NotAfter, c.NotAfter)
	}
	if n := len(testlog.AtLevel(buf.String(), "INFO")); n != 1 {
		t.Errorf("second call logged a new certificate again:\n%s", buf)
	}
	if w := append(testlog.AtLevel(buf.String(), "WARN"), testlog.AtLevel(buf.String(), "ERROR")...); len(w) != 0 {
		t.Errorf("unexpected warnings or errors:\n%s", buf)
	}
	noKeyInLog(t, buf.String(), keyPEM)

	// A second directory gets a different key and serial.
	other := generate(t)
	if other.fp == c.Fingerprint {
		t.Error("two directories got the same certificate")
	}
	if otherLeaf, _ := x509.ParseCertificate(mustDecode(t, other.cert)); otherLeaf == nil || otherLeaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func mustDecode(t *testing.T, pemData []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("no PEM block")
	}
	return block.Bytes
}

func TestNewCertHostname(t *testing.T) {
	tests := []struct {
		host    string
		wantDNS []string
	}{
		{host: "", wantDNS: []string{"localhost"}},
		{host: "cam-01", wantDNS: []string{"localhost", "cam-01"}},
		{host: "cam01.local", wantDNS: []string{"localhost", "cam01.local"}},
		{host: "CAM", wantDNS: []string{"localhost", "CAM"}},
		{host: "localhost", wantDNS: []string{"localhost"}},
		{host: "LocalHost", wantDNS: []string{"localhost"}},
		{host: "cam_01", wantDNS: []string{"localhost"}},
		{host: "-cam", wantDNS: []string{"localhost"}},
		{host: "cam-", wantDNS: []string{"localhost"}},
		{host: "a..b", wantDNS: []string{"localhost"}},
		{host: "cam.", wantDNS: []string{"localhost"}},
		{host: "cam 1", wantDNS: []string{"localhost"}},
		{host: "kamera-ü", wantDNS: []string{"localhost"}},
		{host: "10.0.0.1", wantDNS: []string{"localhost"}},
		{host: "::1", wantDNS: []string{"localhost"}},
		{host: strings.Repeat("a", 63), wantDNS: []string{"localhost", strings.Repeat("a", 63)}},
		{host: strings.Repeat("a", 64), wantDNS: []string{"localhost"}},
		{host: strings.Repeat("abcdefg.", 32) + "ab", wantDNS: []string{"localhost"}}, // 258 characters
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.host), func(t *testing.T) {
			certPEM, keyPEM, err := newCert(fixedNow, tt.host)
			if err != nil {
				t.Fatalf("newCert: %v", err)
			}
			c, err := fromPair(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("generated pair does not load: %v", err)
			}
			if !slices.Equal(c.TLS.Leaf.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs = %q, want %q", c.TLS.Leaf.DNSNames, tt.wantDNS)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		// sha256("") and sha256("abc"), as sha256sum prints them.
		{name: "empty", der: nil, want: "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"},
		{name: "abc", der: []byte("abc"), want: "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fingerprint(tt.der)
			if got != tt.want {
				t.Errorf("Fingerprint = %s, want %s", got, tt.want)
			}
			if !fingerprintRE.MatchString(got) {
				t.Errorf("%q does not match %s", got, fingerprintRE)
			}
		})
	}
}

// TestHandshake serves HTTPS with ServerConfig and connects as a phone does:
// the chain is not trusted, the fingerprint is pinned.
func TestHandshake(t *testing.T) {
	d := newDir(t)
	log, _ := testlog.New()
	// The real clock, so that the only thing a normal client can object
	// to is the missing trust.
	c, err := LoadOrCreate(d, log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = ServerConfig(c)
	srv.StartTLS()
	defer srv.Close()

	errPin := errors.New("certificate fingerprint does not match the pin")
	pinned := func(pin string, minV, maxV uint16) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // trust comes from the pin, not a chain
			MinVersion:         minV,
			MaxVersion:         maxV,
			VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
				if len(rawCerts) == 0 || Fingerprint(rawCerts[0]) != pin {
					return errPin
				}
				return nil
			},
		}}}
	}
	wrongPin := Fingerprint([]byte("some other certificate"))

	tests := []struct {
		name        string
		client      *http.Client
		wantVersion uint16 // 0: the request must fail
		wantErr     error  // with this in the chain, if not nil
	}{
		{name: "right pin", client: pinned(c.Fingerprint, 0, 0), wantVersion: tls.VersionTLS13},
		{name: "right pin, TLS 1.2", client: pinned(c.Fingerprint, tls.VersionTLS12, tls.VersionTLS12), wantVersion: tls.VersionTLS12},
		{name: "right pin, TLS 1.1", client: pinned(c.Fingerprint, tls.VersionTLS10, tls.VersionTLS11)},
		{name: "wrong pin", client: pinned(wrongPin, 0, 0), wantErr: errPin},
		{name: "default client", client: &http.Client{Transport: &http.Transport{}}, wantErr: x509.UnknownAuthorityError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.client.CloseIdleConnections()
			resp, err := tt.client.Get(srv.URL)
			if tt.wantVersion == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request succeeded, want a failure")
				}
				switch want := tt.wantErr.(type) {
				case nil:
				case x509.UnknownAuthorityError:
					if !errors.As(err, &want) {
						t.Errorf("error %v, want an unknown authority", err)
					}
				default:
					if !errors.Is(err, want) {
						t.Errorf("error %v, want %v", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != "ok" {
				t.Fatalf("body %q, %v; want ok", body, err)
			}
			if resp.TLS == nil {
				t.Fatal("response was not over TLS")
			}
			if resp.TLS.Version != tt.wantVersion {
				t.Errorf("TLS version %x, want %x", resp.TLS.Version, tt.wantVersion)
			}
			if got := Fingerprint(resp.TLS.PeerCertificates[0].Raw); got != c.Fingerprint {
				t.Errorf("server presented %s, want %s", got, c.Fingerprint)
			}
		})
	}
}

func TestServerConfig(t *testing.T) {
	p := generate(t)
	c, err := fromPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig(c)
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2 (%x)", cfg.MinVersion, tls.VersionTLS12)
	}
	if cfg.MaxVersion != 0 {
		t.Errorf("MaxVersion = %x, want the default", cfg.MaxVersion)
	}
	if len(cfg.Certificates) != 1 || !bytes.Equal(cfg.Certificates[0].Certificate[0], c.TLS.Certificate[0]) {
		t.Error("config does not hold exactly the certificate")
	}
	if cfg.InsecureSkipVerify || cfg.ClientAuth != tls.NoClientCert || cfg.GetCertificate != nil {
		t.Error("config sets something unusual")
	}
	if ServerConfig(c) == cfg {
		t.Error("ServerConfig returned a shared Config")
	}
}

// TestLoadOrCreateLoneKey: a key without its certificate is what a cut
// during the first start leaves. No fingerprint was ever shown for it, so it
// is removed without an error and a pair is made, with nothing moved aside.
func TestLoadOrCreateLoneKey(t *testing.T) {
	old := generate(t)
	d := newDir(t)
	log, buf := testlog.New()
	writeFile(t, d.Join(KeyFileName), old.key, 0o600)

	c, err := LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	if got, want := entryNames(t, d.Path()), []string{CertFileName, KeyFileName}; !slices.Equal(got, want) {
		t.Errorf("data dir holds %q, want %q", got, want)
	}
	if bytes.Equal(readFileT(t, d.Join(KeyFileName)), old.key) {
		t.Error("the lone key was kept")
	}
	if got := Fingerprint(parseCertFile(t, d.Join(CertFileName)).Raw); got != c.Fingerprint {
		t.Errorf("certificate file has fingerprint %s, returned %s", got, c.Fingerprint)
	}
	if e := testlog.AtLevel(buf.String(), "ERROR"); len(e) != 0 {
		t.Errorf("a lone key logged an error: %q", e)
	}
	if info := testlog.AtLevel(buf.String(), "INFO"); len(info) != 2 || !strings.Contains(info[0], "without its certificate") {
		t.Errorf("want INFO lines for the removal and the new certificate, log:\n%s", buf)
	}
}

func TestLoadOrCreateBadFiles(t *testing.T) {
	good, other := generate(t), generate(t)
	tests := []struct {
		name      string
		cert, key []byte // nil: no file
	}{
		{name: "only cert", cert: good.cert},
		{name: "mismatched pair", cert: good.cert, key: other.key},
		{name: "garbage both", cert: []byte("not a certificate\n"), key: []byte("not a key\n")},
		{name: "garbage cert", cert: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), key: good.key},
		{name: "garbage key", cert: good.cert, key: []byte("\x00\x01\x02")},
		{name: "empty both", cert: []byte{}, key: []byte{}},
		{name: "key is a certificate", cert: good.cert, key: good.cert},
		{name: "key too large", cert: good.cert, key: append(bytes.Repeat([]byte("\n"), maxFileSize), good.key...)},
		{name: "garbage cert only", cert: []byte("junk")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			log, buf := testlog.New()
			certPath, keyPath := d.Join(CertFileName), d.Join(KeyFileName)
			wantNames := []string{CertFileName, KeyFileName}
			if tt.cert != nil {
				writeFile(t, certPath, tt.cert, 0o644)
				wantNames = append(wantNames, movedCert)
			}
			if tt.key != nil {
				writeFile(t, keyPath, tt.key, 0o600)
				wantNames = append(wantNames, movedKey)
			}
			slices.Sort(wantNames)

			c, err := LoadOrCreate(d, log, now)
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if c.Fingerprint == good.fp || c.Fingerprint == other.fp {
				t.Error("the old certificate was kept")
			}
			if got := entryNames(t, d.Path()); !slices.Equal(got, wantNames) {
				t.Errorf("data dir holds %q, want %q", got, wantNames)
			}
			for moved, want := range map[string][]byte{movedCert: tt.cert, movedKey: tt.key} {
				if want == nil {
					continue
				}
				if got := readFileT(t, d.Join(moved)); !bytes.Equal(got, want) {
					t.Errorf("%s does not hold the original content", moved)
				}
			}
			if got := Fingerprint(parseCertFile(t, certPath).Raw); got != c.Fingerprint {
				t.Errorf("new certificate file has fingerprint %s, returned %s", got, c.Fingerprint)
			}
			if m := mode(t, keyPath); m != 0o600 {
				t.Errorf("new key mode %v, want 0600", m)
			}

			errs := testlog.AtLevel(buf.String(), "ERROR")
			if len(errs) != 1 {
				t.Fatalf("want one ERROR line, log:\n%s", buf)
			}
			for _, name := range wantNames {
				if strings.Contains(name, ".bad-") && !strings.Contains(errs[0], d.Join(name)) {
					t.Errorf("ERROR line does not say the file went to %s: %s", name, errs[0])
				}
			}
			if info := testlog.AtLevel(buf.String(), "INFO"); len(info) != 1 || !strings.Contains(info[0], c.Fingerprint) {
				t.Errorf("want one INFO line with the new fingerprint, log:\n%s", buf)
			}
			noKeyInLog(t, buf.String(), readFileT(t, keyPath))

			// The new pair is now the one kept.
			again, err := LoadOrCreate(d, log, now)
			if err != nil {
				t.Fatal(err)
			}
			if again.Fingerprint != c.Fingerprint {
				t.Error("the replacement certificate did not persist")
			}
			if n := len(testlog.AtLevel(buf.String(), "ERROR")); n != 1 {
				t.Errorf("second call logged %d ERROR lines in all, want still 1", n)
			}
		})
	}
}

func TestLoadOrCreatePermissions(t *testing.T) {
	p := generate(t)
	tests := []struct {
		perm     fs.FileMode
		wantPerm fs.FileMode
		warn     bool
	}{
		{perm: 0o600, wantPerm: 0o600},
		{perm: 0o400, wantPerm: 0o400},
		{perm: 0o644, wantPerm: 0o600, warn: true},
		{perm: 0o640, wantPerm: 0o600, warn: true},
		{perm: 0o604, wantPerm: 0o600, warn: true},
		{perm: 0o666, wantPerm: 0o600, warn: true},
	}
	for _, tt := range tests {
		t.Run(tt.perm.String(), func(t *testing.T) {
			d := newDir(t)
			log, buf := testlog.New()
			writeFile(t, d.Join(CertFileName), p.cert, 0o644)
			writeFile(t, d.Join(KeyFileName), p.key, tt.perm)

			c, err := LoadOrCreate(d, log, now)
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if c.Fingerprint != p.fp {
				t.Errorf("fingerprint %s, want the planted %s", c.Fingerprint, p.fp)
			}
			if m := mode(t, d.Join(KeyFileName)); m != tt.wantPerm {
				t.Errorf("key mode after load = %v, want %v", m, tt.wantPerm)
			}
			if m := mode(t, d.Join(CertFileName)); m != 0o644 {
				t.Errorf("cert mode changed to %v", m)
			}
			warns := testlog.AtLevel(buf.String(), "WARN")
			if tt.warn {
				if len(warns) != 1 || !strings.Contains(warns[0], "was="+tt.perm.String()) ||
					!strings.Contains(warns[0], "path="+d.Join(KeyFileName)) {
					t.Errorf("want one WARN line naming the key and its old mode %v, log:\n%s", tt.perm, buf)
				}
			} else if len(warns) != 0 {
				t.Errorf("unexpected WARN:\n%s", buf)
			}
			if e := testlog.AtLevel(buf.String(), "ERROR"); len(e) != 0 {
				t.Errorf("unexpected ERROR:\n%s", buf)
			}
			if got, want := entryNames(t, d.Path()), []string{CertFileName, KeyFileName}; !slices.Equal(got, want) {
				t.Errorf("data dir holds %q, want %q", got, want)
			}
		})
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	const n = 8
	base := filepath.Join(t.TempDir(), "data")
	log, buf := testlog.New()

	fps := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			// Each caller opens the directory itself, as separate
			// processes would.
			d, err := datadir.Open(base)
			if err != nil {
				errs[i] = err
				return
			}
			c, err := LoadOrCreate(d, log, now)
			if err != nil {
				errs[i] = err
				return
			}
			fps[i] = c.Fingerprint
		})
	}
	close(start)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if fps[i] != fps[0] {
			t.Errorf("caller %d got %s, caller 0 got %s", i, fps[i], fps[0])
		}
	}
	if got := Fingerprint(parseCertFile(t, filepath.Join(base, CertFileName)).Raw); got != fps[0] {
		t.Errorf("file holds %s, callers got %s", got, fps[0])
	}
	if c := strings.Count(buf.String(), "created self-signed TLS certificate"); c != 1 {
		t.Errorf("certificate created %d times, want once; log:\n%s", c, buf)
	}
	if got, want := entryNames(t, base), []string{CertFileName, KeyFileName}; !slices.Equal(got, want) {
		t.Errorf("data dir holds %q, want %q", got, want)
	}
}

// TestLoadOrCreateConcurrentRepair starts 8 callers on a broken pair at once:
// without the directory lock, one could move aside the pair another has just
// made, and they would end up with different certificates.
func TestLoadOrCreateConcurrentRepair(t *testing.T) {
	const n, rounds = 8, 5
	p := generate(t)
	for round := range rounds {
		base := filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(base, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(base, CertFileName), p.cert, 0o644) // a certificate without its key
		log, buf := testlog.New()

		dirs := make([]datadir.Dir, n)
		for i := range dirs {
			d, err := datadir.Open(base)
			if err != nil {
				t.Fatal(err)
			}
			dirs[i] = d
		}
		fps := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				c, err := LoadOrCreate(dirs[i], log, now)
				if err != nil {
					errs[i] = err
					return
				}
				fps[i] = c.Fingerprint
			})
		}
		close(start)
		wg.Wait()

		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
			}
			if fps[i] != fps[0] {
				t.Fatalf("round %d: caller %d got %s, caller 0 got %s", round, i, fps[i], fps[0])
			}
		}
		if got, want := entryNames(t, base), []string{CertFileName, movedCert, KeyFileName}; !slices.Equal(got, want) {
			t.Fatalf("round %d: data dir holds %q, want %q", round, got, want)
		}
		if e := testlog.AtLevel(buf.String(), "ERROR"); len(e) != 1 {
			t.Fatalf("round %d: %d ERROR lines, want 1:\n%s", round, len(e), buf)
		}
	}
}

func TestLoadOrCreateErrors(t *testing.T) {
	tests := []struct {
		name      string
		spoil     func(t *testing.T, d datadir.Dir)
		wantNames []string // entries left in the data directory; nil: not checked
	}{
		{
			name: "tls.key is a directory",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.Mkdir(d.Join(KeyFileName), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantNames: []string{KeyFileName},
		},
		{
			name: "tls.crt is a directory",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.Mkdir(d.Join(CertFileName), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantNames: []string{CertFileName},
		},
		{
			name: "data directory removed",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.RemoveAll(d.Path()); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			tt.spoil(t, d)
			log, buf := testlog.New()
			c, err := LoadOrCreate(d, log, now)
			if err == nil {
				t.Fatalf("LoadOrCreate succeeded with %s, want an error", c.Fingerprint)
			}
			if c != nil {
				t.Error("certificate returned with an error")
			}
			if tt.wantNames != nil {
				if !strings.Contains(err.Error(), d.Join(tt.wantNames[0])) {
					t.Errorf("error %q does not name %s", err, d.Join(tt.wantNames[0]))
				}
				// Not ours to move aside: the operator must look.
				if got := entryNames(t, d.Path()); !slices.Equal(got, tt.wantNames) {
					t.Errorf("data dir holds %q, want %q", got, tt.wantNames)
				}
				if e := testlog.AtLevel(buf.String(), "ERROR"); len(e) != 0 {
					t.Errorf("unexpected ERROR:\n%s", buf)
				}
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	good, other := generate(t), generate(t)
	// A leaf followed by another certificate, as a chain file has it.
	chain := append(slices.Clone(good.cert), other.cert...)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

	tests := []struct {
		name      string
		cert, key []byte // nil: no file
		certDir   bool   // the certificate path is a directory
		wantFP    string // "": an error is expected
		wantCerts int    // certificates in the loaded chain
		wantPaths []string
	}{
		{name: "good pair", cert: good.cert, key: good.key, wantFP: good.fp, wantCerts: 1},
		{name: "chain", cert: chain, key: good.key, wantFP: good.fp, wantCerts: 2},
		{name: "missing cert", key: good.key, wantPaths: []string{"camd.crt"}},
		{name: "missing key", cert: good.cert, wantPaths: []string{"camd.key"}},
		{name: "missing both", wantPaths: []string{"camd.crt"}},
		{name: "mismatched pair", cert: good.cert, key: other.key, wantPaths: []string{"camd.crt", "camd.key"}},
		{name: "chain with wrong key", cert: chain, key: other.key, wantPaths: []string{"camd.crt", "camd.key"}},
		{name: "garbage cert", cert: []byte("junk"), key: good.key, wantPaths: []string{"camd.crt"}},
		{name: "garbage key", cert: good.cert, key: []byte("junk"), wantPaths: []string{"camd.key"}},
		{name: "cert is a directory", certDir: true, key: good.key, wantPaths: []string{"camd.crt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "camd.crt"), filepath.Join(dir, "camd.key")
			files := map[string][]byte{}
			if tt.cert != nil {
				files[certPath] = tt.cert
			}
			if tt.key != nil {
				files[keyPath] = tt.key
			}
			for path, data := range files {
				writeFile(t, path, data, 0o644)
				if err := os.Chtimes(path, old, old); err != nil {
					t.Fatal(err)
				}
			}
			if tt.certDir {
				if err := os.Mkdir(certPath, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			before := entryNames(t, dir)

			c, err := LoadFiles(certPath, keyPath)
			if tt.wantFP != "" {
				if err != nil {
					t.Fatalf("LoadFiles: %v", err)
				}
				if c.Fingerprint != tt.wantFP {
					t.Errorf("fingerprint %s, want the leaf's %s", c.Fingerprint, tt.wantFP)
				}
				if c.TLS.Leaf == nil || !c.NotAfter.Equal(c.TLS.Leaf.NotAfter) {
					t.Error("NotAfter is not the leaf's")
				}
				if len(c.TLS.Certificate) != tt.wantCerts {
					t.Errorf("%d certificates loaded, want %d", len(c.TLS.Certificate), tt.wantCerts)
				}
			} else {
				if err == nil {
					t.Fatal("LoadFiles succeeded, want an error")
				}
				if c != nil {
					t.Error("certificate returned with an error")
				}
				for _, name := range tt.wantPaths {
					if !strings.Contains(err.Error(), filepath.Join(dir, name)) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
			}

			// Never written, moved or re-moded.
			if got := entryNames(t, dir); !slices.Equal(got, before) {
				t.Errorf("dir changed from %q to %q", before, got)
			}
			for path, want := range files {
				if got := readFileT(t, path); !bytes.Equal(got, want) {
					t.Errorf("%s content changed", path)
				}
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != 0o644 {
					t.Errorf("%s mode changed to %v", path, info.Mode().Perm())
				}
				if !info.ModTime().Equal(old) {
					t.Errorf("%s mtime changed from %v to %v", path, old, info.ModTime())
				}
			}
		})
	}
}

// TestLoadFilesMatchesLoadOrCreate points LoadFiles at a pair LoadOrCreate
// wrote: both must yield the same certificate.
func TestLoadFilesMatchesLoadOrCreate(t *testing.T) {
	d := newDir(t)
	log, _ := testlog.New()
	made, err := LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadFiles(d.Join(CertFileName), d.Join(KeyFileName))
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	if loaded.Fingerprint != made.Fingerprint || !loaded.NotAfter.Equal(made.NotAfter) {
		t.Errorf("LoadFiles gave %s until %v, LoadOrCreate %s until %v",
			loaded.Fingerprint, loaded.NotAfter, made.Fingerprint, made.NotAfter)
	}
	if !loaded.TLS.PrivateKey.(*ecdsa.PrivateKey).Equal(made.TLS.PrivateKey) {
		t.Error("keys differ")
	}
}

// TestCreateWriteFailure makes one of the two writes fail: neither case may
// leave a certificate without its key, nor a lone key behind.
func TestCreateWriteFailure(t *testing.T) {
	tests := []struct {
		name             string
		badCert, badKey  bool // path in a directory that does not exist
		wantErrPathIsKey bool
	}{
		// The key goes first, so the certificate is never written.
		{name: "key write fails", badKey: true, wantErrPathIsKey: true},
		// The key was written; it is removed again.
		{name: "cert write fails", badCert: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
			if tt.badCert {
				certPath = filepath.Join(dir, "missing", CertFileName)
			}
			if tt.badKey {
				keyPath = filepath.Join(dir, "missing", KeyFileName)
			}
			c, err := create(certPath, keyPath, fixedNow, "")
			if err == nil {
				t.Fatalf("create succeeded with %s, want an error", c.Fingerprint)
			}
			want := certPath
			if tt.wantErrPathIsKey {
				want = keyPath
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if got := entryNames(t, dir); len(got) != 0 {
				t.Errorf("dir holds %q after the failure, want nothing", got)
			}
		})
	}
}
