package tlscert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/clock"
)

// at1970 is where a cam without an RTC boots, and makes its first certificate.
func at1970() time.Time { return time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC) }

// fakeClock is a clock.Clock whose time and trust a test sets.
type fakeClock struct {
	now     atomic.Pointer[time.Time]
	trusted atomic.Bool
}

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t, false)
	return c
}

func (c *fakeClock) set(t time.Time, trusted bool) { c.now.Store(&t); c.trusted.Store(trusted) }
func (c *fakeClock) Now() time.Time                { return *c.now.Load() }
func (c *fakeClock) Trusted() bool                 { return c.trusted.Load() }
func (c *fakeClock) Status() clock.Status          { return clock.Status{Trusted: c.Trusted()} }

// servedCert connects to srv and returns the certificate it presents.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test checks what is served
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func spki(c *x509.Certificate) []byte { return c.RawSubjectPublicKeyInfo }

// Renew re-signs the certificate with the same key when the trusted time is
// outside its dates, and only then.
func TestAutoRenew(t *testing.T) {
	real := time.Now()
	tests := []struct {
		name    string
		made    time.Time // the clock at first start
		renewAt time.Time
		renewed bool
	}{
		{name: "made at 1970, renewed at the real time", made: at1970(), renewAt: real, renewed: true},
		{name: "made 30 years ahead, renewed at the real time", made: real.AddDate(30, 0, 0), renewAt: real, renewed: true},
		{name: "made at 1970, the time still 1970", made: at1970(), renewAt: at1970().Add(time.Minute)},
		{name: "made now, still valid", made: real, renewAt: real.Add(time.Hour)},
		{name: "made 11 years ago, expired", made: real.AddDate(-11, 0, 0), renewAt: real, renewed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			log, logs := testlog.New()
			a, err := OpenAuto(d, log, func() time.Time { return tt.made })
			if err != nil {
				t.Fatal(err)
			}
			old := a.Cert()
			keyBefore := readFileT(t, d.Join(KeyFileName))
			certBefore := readFileT(t, d.Join(CertFileName))

			renewed, err := a.Renew(tt.renewAt)
			if err != nil {
				t.Fatalf("Renew: %v", err)
			}
			if renewed != tt.renewed {
				t.Fatalf("Renew = %v, want %v", renewed, tt.renewed)
			}
			c := a.Cert()
			if !c.Covers(tt.renewAt) {
				t.Errorf("the certificate (%s to %s) does not cover %s", c.TLS.Leaf.NotBefore, c.NotAfter, tt.renewAt)
			}
			if !bytes.Equal(readFileT(t, d.Join(KeyFileName)), keyBefore) {
				t.Error("the key file changed")
			}
			if !tt.renewed {
				if c != old || !bytes.Equal(readFileT(t, d.Join(CertFileName)), certBefore) {
					t.Error("a certificate that covers the time was replaced")
				}
				return
			}
			if !bytes.Equal(spki(c.TLS.Leaf), spki(old.TLS.Leaf)) {
				t.Error("the renewed certificate has another public key")
			}
			if c.Fingerprint == old.Fingerprint {
				t.Error("the fingerprint did not change")
			}
			if !slicesEqual(c.TLS.Leaf.DNSNames, old.TLS.Leaf.DNSNames) || len(c.TLS.Leaf.IPAddresses) != len(old.TLS.Leaf.IPAddresses) {
				t.Errorf("names changed: %v %v, were %v %v", c.TLS.Leaf.DNSNames, c.TLS.Leaf.IPAddresses, old.TLS.Leaf.DNSNames, old.TLS.Leaf.IPAddresses)
			}
			// On disk, and what the next start loads.
			again, err := LoadOrCreate(d, log, time.Now)
			if err != nil || again.Fingerprint != c.Fingerprint {
				t.Errorf("the next start loads %v (%v), want the renewed %s", again, err, c.Fingerprint)
			}
			warn := testlog.AtLevel(logs.String(), "WARN")
			if len(warn) != 1 || !strings.Contains(warn[0], "sha256="+c.Fingerprint) || !strings.Contains(warn[0], "previous_sha256="+old.Fingerprint) {
				t.Errorf("want one WARN naming the new and the old fingerprint:\n%s", logs)
			}
			noKeyInLog(t, logs.String(), keyBefore)
			if again, err := a.Renew(tt.renewAt.Add(time.Minute)); err != nil || again {
				t.Errorf("a second Renew: %v, %v; want nothing to do", again, err)
			}
		})
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// Issue 13: a cam boots at 1970 and makes its certificate, valid 1969 to
// 1980. Once its clock is trusted at the real time, the certificate served
// covers now, with the same public key, without a restart.
func TestAutoWatchRenewsOnceTrusted(t *testing.T) {
	d := newDir(t)
	log, _ := testlog.New()
	clk := newFakeClock(at1970())
	a, err := OpenAuto(d, log, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	// A plain http.Server, as camd runs: httptest would add its own
	// certificate beside GetCertificate.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), TLSConfig: a.ServerConfig()}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	addr := ln.Addr().String()

	first := servedCert(t, addr)
	if first.NotBefore.Year() != 1969 || first.NotAfter.Year() != 1980 {
		t.Fatalf("first certificate valid %s to %s, want 1969 to 1980", first.NotBefore, first.NotAfter)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Watch(ctx, clk, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	time.Sleep(50 * time.Millisecond) // untrusted: nothing may change
	if got := servedCert(t, addr); !bytes.Equal(got.Raw, first.Raw) {
		t.Fatal("the certificate changed while the clock was untrusted")
	}

	real := time.Now()
	clk.set(real, true)
	deadline := time.Now().Add(10 * time.Second)
	for !a.Cert().Covers(real) {
		if time.Now().After(deadline) {
			t.Fatal("the certificate was not renewed within 10 s of the clock being trusted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := servedCert(t, addr)
	if real.Before(got.NotBefore) || real.After(got.NotAfter) {
		t.Errorf("served certificate valid %s to %s, does not cover %s", got.NotBefore, got.NotAfter, real)
	}
	if !bytes.Equal(spki(got), spki(first)) {
		t.Error("the served certificate has another public key")
	}
	if Fingerprint(got.Raw) != a.Cert().Fingerprint {
		t.Error("the served certificate is not Cert()'s")
	}
}
