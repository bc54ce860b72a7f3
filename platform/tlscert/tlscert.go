// Package tlscert provides camd's HTTPS server certificate: either a
// self-signed one made on first start and kept in the data directory, or a
// certificate and key supplied by the operator.
//
// A camera cannot renew certificates and has no name a public CA would vouch
// for, so clients pin the SHA-256 fingerprint of the self-signed certificate
// rather than trust a chain. The certificate therefore lives long and must stay
// the same across restarts: deleting both files and restarting makes a new one,
// and every client must then pin again.
//
// Its dates come from the clock at first start, which on a cam without an RTC
// may read 1970. Auto re-signs it with the same key once the time is trusted
// and outside its validity: the certificate's fingerprint changes then, its
// public key (what curl --pinnedpubkey pins) does not.
package tlscert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"camd/platform/atomicfile"
	"camd/platform/clock"
	"camd/platform/datadir"
)

// Cert is a loaded server certificate.
type Cert struct {
	TLS         tls.Certificate // for tls.Config.Certificates
	Fingerprint string          // SHA-256 of the leaf, "AB:CD:..."
	NotAfter    time.Time
}

// CertFileName is the certificate's name inside the data directory (PEM).
const CertFileName = "tls.crt"

// KeyFileName is the private key's name inside the data directory (PEM,
// PKCS#8, mode 0600).
const KeyFileName = "tls.key"

// validity is how long a generated certificate lasts: a camera has no way to
// renew it, and pinning clients check the fingerprint, not the dates.
const validity = 10 // years

// backdate covers a client clock slightly behind the camera's.
const backdate = time.Hour

// maxFileSize bounds what is read from a certificate or key file, so a huge
// file in the wrong place costs nothing. Real ones are a few KiB.
const maxFileSize = 1 << 20

// errTooLarge reports a file longer than maxFileSize.
var errTooLarge = errors.New("file is larger than 1 MiB")

// LoadOrCreate returns the self-signed certificate kept in dir, creating it on
// first start.
//
// A key without its certificate is what a power cut during the first start
// leaves (the key is written first); it is removed and a pair made. Files
// that cannot be used as a pair otherwise (a certificate without its key,
// either does not parse, or the key does not match the certificate) are
// moved aside as <name>.bad-<unix time>, an error is logged and a fresh
// certificate is made: clients pinned the old one.
// A key file readable by group or others is tightened to 0600 with a warning.
// Several processes starting at once on an empty directory end up with the
// same certificate.
func LoadOrCreate(dir datadir.Dir, log *slog.Logger, now func() time.Time) (*Cert, error) {
	unlock, err := dir.Lock()
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	defer unlock()

	certPath, keyPath := dir.Join(CertFileName), dir.Join(KeyFileName)
	// A few rounds at most: move a bad pair aside, create (or lose the race to
	// a process without the lock), read the winner's pair.
	for range 3 {
		certPEM, certErr := readFile(certPath)
		keyPEM, keyErr := readFile(keyPath)
		for _, err := range []error{certErr, keyErr} {
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errTooLarge) {
				// Permission denied, a directory in the way: moving it
				// aside would hide a problem the operator must fix.
				return nil, err
			}
		}
		certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)

		var reason error
		switch {
		case certMissing && keyMissing:
			host, _ := os.Hostname() // without a hostname, localhost and the loopback IPs still work
			c, err := create(certPath, keyPath, now(), host)
			if errors.Is(err, fs.ErrExist) {
				continue // another process won the race; read its pair
			}
			if err != nil {
				return nil, err
			}
			log.Info("created self-signed TLS certificate; clients pin its fingerprint",
				"cert", certPath, "fingerprint", c.Fingerprint, "not_after", c.NotAfter)
			return c, nil
		case keyMissing:
			reason = fmt.Errorf("%s exists without %s", CertFileName, KeyFileName)
		case certMissing:
			// Left by a crash between writing the key and the certificate
			// (create writes the key first). No certificate of this key
			// was ever shown, so no client pins it: drop it quietly and
			// make a pair, rather than raise an alarm about a fingerprint
			// nobody saw.
			if err := os.Remove(keyPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove TLS key %s left without its certificate: %w", keyPath, err)
			}
			if err := atomicfile.SyncDir(filepath.Dir(keyPath)); err != nil {
				return nil, err
			}
			log.Info("removed a TLS key left without its certificate by an interrupted first start", "key", keyPath)
			continue
		case certErr != nil:
			reason = certErr
		case keyErr != nil:
			reason = keyErr
		default:
			c, err := fromPair(certPEM, keyPEM)
			if err == nil {
				if err := atomicfile.Tighten(keyPath, "TLS key", log); err != nil {
					return nil, err
				}
				return c, nil
			}
			reason = err
		}

		// Both go, even when only one is broken: a new key needs a new
		// certificate and the other way round.
		at := now()
		var moved []string
		for _, p := range []string{keyPath, certPath} {
			if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			bad, err := atomicfile.MoveAside(p, at)
			if err != nil {
				return nil, err
			}
			moved = append(moved, bad)
		}
		log.Error("TLS certificate and key in the data directory were unusable; moved them aside and will make a new self-signed certificate (clients must pin the new fingerprint)",
			"cert", certPath, "key", keyPath, "moved_to", moved, "err", reason)
	}
	return nil, fmt.Errorf("load TLS certificate %s: gave up after repeated changes by another process", certPath)
}

// LoadFiles loads a certificate and key provided from outside. The files are
// only read, never written, moved or re-moded: they belong to the operator.
// The certificate file may hold a chain after the leaf.
func LoadFiles(certPath, keyPath string) (*Cert, error) {
	certPEM, err := readFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(keyPath)
	if err != nil {
		return nil, err
	}
	c, err := fromPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls does not say which file it disliked; name both.
		return nil, fmt.Errorf("load TLS certificate %s with key %s: %w", certPath, keyPath, err)
	}
	return c, nil
}

// ServerConfig returns a tls.Config for camd's listener: TLS 1.2 minimum, the
// certificate, and nothing else unusual. Each call returns a new Config.
func ServerConfig(c *Cert) *tls.Config {
	cfg := baseConfig()
	cfg.Certificates = []tls.Certificate{c.TLS}
	return cfg
}

func baseConfig() *tls.Config {
	// TLS 1.0 and 1.1 are deprecated (RFC 8996); every phone and browser
	// still in use speaks 1.2.
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// Covers reports whether t is within the certificate's validity.
func (c *Cert) Covers(t time.Time) bool {
	return !t.Before(c.TLS.Leaf.NotBefore) && !t.After(c.NotAfter)
}

// Auto is the --tls auto certificate, served live: Renew replaces it, and the
// next handshake gets the new one without a restart.
type Auto struct {
	dir datadir.Dir
	log *slog.Logger
	cur atomic.Pointer[Cert]
}

// OpenAuto loads or creates the certificate kept in dir, as LoadOrCreate.
func OpenAuto(dir datadir.Dir, log *slog.Logger, now func() time.Time) (*Auto, error) {
	c, err := LoadOrCreate(dir, log, now)
	if err != nil {
		return nil, err
	}
	a := &Auto{dir: dir, log: log}
	a.cur.Store(c)
	return a, nil
}

// Cert returns the certificate being served.
func (a *Auto) Cert() *Cert { return a.cur.Load() }

// ServerConfig is ServerConfig for the live certificate: each handshake
// gets the current one.
func (a *Auto) ServerConfig() *tls.Config {
	cfg := baseConfig()
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &a.Cert().TLS, nil }
	return cfg
}

// Renew makes the certificate cover now, which the caller trusts: when now
// is outside its validity, it signs a new one with the same key, for the same
// names, valid from now, writes it over tls.crt and serves it from then on.
// It reports whether the certificate changed. The fingerprint changes with
// it; the public key does not.
func (a *Auto) Renew(now time.Time) (bool, error) {
	old := a.Cert()
	if old.Covers(now) {
		return false, nil
	}
	unlock, err := a.dir.Lock()
	if err != nil {
		return false, fmt.Errorf("renew TLS certificate: %w", err)
	}
	defer unlock()
	certPath := a.dir.Join(CertFileName)
	// Another process on this directory may have renewed it already.
	if c, err := a.readPair(); err == nil && c.Covers(now) && samePublicKey(c, old) {
		a.cur.Store(c)
		return true, nil
	}
	signer, ok := old.TLS.PrivateKey.(crypto.Signer)
	if !ok {
		return false, fmt.Errorf("renew TLS certificate %s: key of type %T cannot sign", certPath, old.TLS.PrivateKey)
	}
	leaf := old.TLS.Leaf
	der, err := signCert(signer, now, leaf.DNSNames, leaf.IPAddresses)
	if err != nil {
		return false, err
	}
	c, err := withLeaf(der, old.TLS.PrivateKey)
	if err != nil {
		return false, fmt.Errorf("renew TLS certificate: %w", err)
	}
	if err := atomicfile.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return false, fmt.Errorf("renew TLS certificate: %w", err)
	}
	a.cur.Store(c)
	a.log.Warn("renewed the self-signed TLS certificate with the same key: its dates did not cover the trusted time; clients that pin the certificate's SHA-256 must pin the new one, public-key pins still match",
		"cert", certPath, "sha256", c.Fingerprint, "previous_sha256", old.Fingerprint,
		"previous_not_before", leaf.NotBefore.UTC().Format(time.RFC3339), "previous_not_after", old.NotAfter.UTC().Format(time.RFC3339),
		"not_after", c.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// readPair reads the pair in the data directory as it is now.
func (a *Auto) readPair() (*Cert, error) {
	certPEM, err := readFile(a.dir.Join(CertFileName))
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(a.dir.Join(KeyFileName))
	if err != nil {
		return nil, err
	}
	return fromPair(certPEM, keyPEM)
}

func samePublicKey(a, b *Cert) bool {
	pa, ok := a.TLS.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pa.Equal(b.TLS.Leaf.PublicKey)
}

// Watch renews the certificate whenever clk is trusted and its time is
// outside the certificate's validity, checking every interval until ctx
// ends: the cam may have made it at first start with a clock reading 1970,
// and its time becomes trusted only after an NTP sync. A failure is logged
// once and retried.
func (a *Auto) Watch(ctx context.Context, clk clock.Clock, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !clk.Trusted() {
			continue
		}
		_, err := a.Renew(clk.Now())
		if err != nil && !failing {
			a.log.Error("could not renew the TLS certificate; serving the old one and retrying", "err", err)
		}
		failing = err != nil
	}
}

// Fingerprint formats the SHA-256 of a DER certificate as uppercase hex pairs
// joined by colons, "AB:CD:...", as browsers and
// `openssl x509 -fingerprint -sha256` show it, so users can compare by eye.
func Fingerprint(der []byte) string {
	const digits = "0123456789ABCDEF"
	sum := sha256.Sum256(der)
	b := make([]byte, 0, 3*len(sum)-1)
	for i, c := range sum {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&0x0f])
	}
	return string(b)
}

// readFile reads a PEM file, at most one byte past maxFileSize. Errors name
// the path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read TLS file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read TLS file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read TLS file %s: %w", path, errTooLarge)
	}
	return data, nil
}

// fromPair parses a PEM certificate (chain) and its PEM key, checking that
// they belong together.
func fromPair(certPEM, keyPEM []byte) (*Cert, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := pair.Leaf
	if leaf == nil { // GODEBUG x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, err
		}
		pair.Leaf = leaf
	}
	return &Cert{TLS: pair, Fingerprint: Fingerprint(pair.Certificate[0]), NotAfter: leaf.NotAfter}, nil
}

// withLeaf is the Cert of one DER certificate and its key.
func withLeaf(der []byte, key crypto.PrivateKey) (*Cert, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return &Cert{TLS: pair, Fingerprint: Fingerprint(der), NotAfter: leaf.NotAfter}, nil
}

// create makes a new certificate and key and writes them into place.
//
// The key is written first, and atomicfile.Create has fsynced both the file
// and the directory before it returns, so the certificate cannot exist on disk
// without its key, whenever the power goes. A crash in between leaves a key
// alone, which the next start moves aside.
func create(certPath, keyPath string, now time.Time, hostname string) (*Cert, error) {
	certPEM, keyPEM, err := newCert(now, hostname)
	if err != nil {
		return nil, err
	}
	c, err := fromPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	if err := atomicfile.Create(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("create TLS key: %w", err)
	}
	if err := atomicfile.Create(certPath, certPEM, 0o644); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			// Drop the lone key so the next start begins clean rather
			// than reporting a broken pair. Should this fail too, the
			// next start moves the key aside.
			if os.Remove(keyPath) == nil {
				atomicfile.SyncDir(filepath.Dir(keyPath))
			}
		}
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	return c, nil
}

// newCert generates an ECDSA P-256 key and a self-signed server certificate
// for it, both PEM encoded (the key as PKCS#8).
func newCert(now time.Time, hostname string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate TLS key: %w", err)
	}
	dns := []string{"localhost"}
	if validHostname(hostname) && !strings.EqualFold(hostname, "localhost") {
		dns = append(dns, hostname)
	}
	der, err := signCert(key, now, dns, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode TLS key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}

// signCert makes a self-signed server certificate for key (DER), valid from
// now less backdate for validity years.
func signCert(key crypto.Signer, now time.Time, dns []string, ips []net.IP) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "camd"},
		DNSNames:              dns,
		IPAddresses:           ips,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(validity, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	return der, nil
}

// randomSerial returns a random positive serial of up to 128 bits: unique
// without any state to keep, and within the 20 octets RFC 5280 allows.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate TLS serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// validHostname reports whether h fits in a DNS SAN as RFC 1123 allows:
// dot-separated labels of 1 to 63 letters, digits and inner hyphens. Whatever
// the system reports, an odd hostname is left out rather than allowed to make
// certificate creation fail or produce a name no client would match.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false // an address belongs in an IP SAN, not a DNS one
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
