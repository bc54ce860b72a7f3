package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"camd/apierr"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/ntpclock"
	"camd/platform/ntpclock/chronytest"
)

// clock1970 is a local clock that booted at 1970 and runs at real speed, as
// on a cam without an RTC.
func clock1970() func() time.Time {
	start := time.Now()
	boot := time.Date(1970, 1, 1, 0, 0, 7, 0, time.UTC)
	return func() time.Time { return boot.Add(time.Since(start)) }
}

func newNTPClock(t *testing.T, dir string, cfg ntpclock.Config) *ntpclock.Clock {
	t.Helper()
	d, err := datadir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Floor, cfg.Timeout = d, clock.BuildFloor(""), 300*time.Millisecond
	cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, 500*time.Millisecond
	c, err := ntpclock.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond every 50 ms until it holds, failing after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNTPWithLocalClockAt1970: against a real NTP server (chronyd), a cam
// whose local clock reads 1970 gets the right time, and its tokens carry real
// iat/exp and verify.
func TestNTPWithLocalClockAt1970(t *testing.T) {
	chrony := chronytest.Start(t)
	dir := t.TempDir()
	clk := newNTPClock(t, dir, ntpclock.Config{Mode: clock.ModeNTP, Servers: []string{chrony.Addr}, SystemTime: clock1970()})
	s := startServer(t, dir, serverOpts{clock: clk})

	waitFor(t, "the first sync", func() bool { return clk.Status().Synced })
	if d := clk.Now().Sub(time.Now()).Abs(); d > 2*time.Second {
		t.Fatalf("corrected time is %v off real time", d)
	}
	var health struct {
		Clock struct {
			Mode    string  `json:"mode"`
			Trusted bool    `json:"trusted"`
			Synced  bool    `json:"synced"`
			Server  string  `json:"server"`
			Offset  float64 `json:"offset_ms"`
		} `json:"clock"`
	}
	r := do(t, "GET", s.URL+"/healthz", "")
	if err := json.Unmarshal([]byte(r.Body), &health); err != nil {
		t.Fatal(err)
	}
	c := health.Clock
	if c.Mode != "ntp" || !c.Trusted || !c.Synced || c.Server != chrony.Addr || c.Offset < 1e12 {
		t.Errorf("healthz clock = %+v: want ntp, trusted, synced via %s, an offset of decades", c, chrony.Addr)
	}

	tok := login(t, s)
	var claims struct{ Iat, Exp int64 }
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(time.Unix(claims.Iat, 0)).Abs(); d > 5*time.Second || claims.Exp-claims.Iat != 3600 {
		t.Errorf("token iat %d (%v from real time), exp %d", claims.Iat, d, claims.Exp)
	}
	r = do(t, "POST", s.URL+"/api/ack", `{"count":1}`, jsonCT, "Authorization: Bearer "+tok)
	if r.Status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	if at, _ := time.Parse(time.RFC3339, r.JSON(t)["acked_at"].(string)); time.Since(at).Abs() > 5*time.Second {
		t.Errorf("acked_at %v is not real time", at)
	}
}

// TestUntrustedClockRefusesTokens: in auto mode a local clock below the floor
// (1970) and no NTP answer mean 503 with Retry-After for login and the
// bearer routes, while /admin keeps working.
func TestUntrustedClockRefusesTokens(t *testing.T) {
	dir := t.TempDir()
	clk := newNTPClock(t, dir, ntpclock.Config{
		Mode: clock.ModeAuto, Servers: []string{"127.0.0.1:" + strconv.Itoa(chronytest.FreePort(t))}, SystemTime: clock1970(),
	})
	s := startServer(t, dir, serverOpts{clock: clk})
	tests := []struct {
		method, path, body string
		headers            []string
		status             int
	}{
		{"POST", "/api/login", `{"user":"owner","pass":"` + s.Password + `"}`, []string{jsonCT}, 503},
		{"POST", "/api/ack", `{"count":1}`, []string{jsonCT, "Authorization: Bearer x.y.z"}, 503},
		{"GET", "/api/ack", "", nil, 503},
		{"GET", "/admin", "", []string{"Authorization: Basic " + basic("owner", s.Password)}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, tc.method, s.URL+tc.path, tc.body, tc.headers...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.Status, tc.status, r.Body)
			}
			if tc.status != 503 {
				return
			}
			if got := r.JSON(t)["error"]; got != "clock not synchronized" {
				t.Errorf("error %q", got)
			}
			checkError(t, r, apierr.ClockUntrusted)
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 300 {
				t.Errorf("Retry-After %q: want 1 to 300 seconds", r.Header.Get("Retry-After"))
			}
		})
	}
	if st := clk.Status(); st.Trusted || st.Synced {
		t.Errorf("status %+v: want untrusted and unsynced", st)
	}
}
