package e2e

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"camd/platform/ntpclock/chronytest"
	"camd/platform/ntpclock/ntptest"
)

// clock returns /healthz's clock object.
func (p *proc) clock() map[string]any {
	p.t.Helper()
	r := p.do("GET", "/healthz", "")
	c, _ := r.field(p.t, "clock").(map[string]any)
	if c == nil {
		p.t.Fatalf("healthz has no clock object: %s", r.Body)
	}
	return c
}

func (p *proc) waitSynced() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p.clock()["synced"] != true {
		if time.Now().After(deadline) {
			p.t.Fatalf("never synced; healthz clock %v\n%s", p.clock(), p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkUnavailable(t *testing.T, r response) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable || r.field(t, "error") != "clock not synchronized" {
		t.Fatalf("got %d %s, want 503 clock not synchronized", r.Status, r.Body)
	}
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want a number of seconds", r.Header.Get("Retry-After"))
	}
}

// TestNTPWithChrony is the clock walk-through of docs/operations.md (Time): camd --clock ntp
// against a local chronyd reports synced in /healthz, and login works.
func TestNTPWithChrony(t *testing.T) {
	chrony := chronytest.Start(t)
	p := start(t, t.TempDir(), "--clock=ntp", "--ntp-servers="+chrony.Addr)
	p.waitSynced()
	c := p.clock()
	if c["mode"] != "ntp" || c["trusted"] != true || c["server"] != chrony.Addr || c["last_sync"] == nil || c["next_sync"] == nil {
		t.Errorf("healthz clock = %v", c)
	}
	tok := p.login(p.Password)
	if r := p.do("POST", "/api/ack", `{"count":1}`, bearer(tok)); r.Status != 200 {
		t.Errorf("ack: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(p.logs(), `"msg":"clock synced"`) {
		t.Errorf("the sync was not logged:\n%s", p.logs())
	}
}

// TestNTPDeadServerThenRecovers: with no NTP server answering, login, the
// bearer routes and client creation answer 503 with Retry-After and the rest
// of /admin works; once a server
// appears on that port camd syncs and recovers without a restart.
func TestNTPDeadServerThenRecovers(t *testing.T) {
	port := chronytest.FreePort(t)
	p := start(t, t.TempDir(), "--clock=ntp", "--ntp-servers=127.0.0.1:"+strconv.Itoa(port))
	checkUnavailable(t, p.do("POST", "/api/login", `{"user":"owner","pass":"`+p.Password+`"}`))
	checkUnavailable(t, p.do("GET", "/api/ack", "", bearer("x.y.z")))
	if r := p.do("GET", "/admin", "", basicAuth("owner", p.Password)); r.Status != 200 {
		t.Errorf("admin while the clock is untrusted: %d", r.Status)
	}
	// A client token made now would carry a wrong date: no creation either.
	checkUnavailable(t, p.admin(p.Password, "POST", "/admin/clients", `{"name":"porch-esp32"}`))
	if r := p.pageForm(p.Password, "/admin/ui/clients", "name=porch-esp32"); r.Status != http.StatusServiceUnavailable ||
		!strings.Contains(r.Body, "clock is not trusted yet") {
		t.Errorf("create a client with the page's form while the clock is untrusted: %d %.300s", r.Status, r.Body)
	}
	if c := p.clock(); c["trusted"] != false || c["synced"] != false {
		t.Errorf("healthz clock = %v", c)
	}

	chronytest.StartOn(t, port)
	p.waitSynced()
	tok := p.login(p.Password)
	if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != http.StatusNotFound {
		t.Errorf("bearer route after recovery: %d %s", r.Status, r.Body)
	}
	p.addClient(p.Password, `{"name":"porch-esp32"}`)
	if !strings.Contains(p.logs(), "NTP sync failed") {
		t.Error("the failed syncs were not logged")
	}
}

// TestClockSystemSendsNoPacket: --clock system never queries NTP, even with
// servers configured.
func TestClockSystemSendsNoPacket(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var packets atomic.Int64
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
			packets.Add(1)
		}
	}()
	p := start(t, t.TempDir(), "--clock=system", "--ntp-servers="+conn.LocalAddr().String())
	p.login(p.Password)
	if c := p.clock(); c["mode"] != "system" || c["trusted"] != true || c["synced"] != false {
		t.Errorf("healthz clock = %v", c)
	}
	time.Sleep(1500 * time.Millisecond) // camd's first sync would be immediate
	p.stop()
	if n := packets.Load(); n != 0 {
		t.Errorf("--clock system sent %d NTP packets", n)
	}
}

// TestLastKnownGoodFloor: the last-known-good time is written at shutdown
// and survives a restart; a clock reading before it is not trusted, in auto
// mode as in system mode.
func TestLastKnownGoodFloor(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	p.stop()
	raw, err := os.ReadFile(filepath.Join(dir, "clock.lastgood"))
	if err != nil {
		t.Fatalf("no last-known-good time after shutdown: %v", err)
	}
	saved, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw)))
	if err != nil || time.Since(saved).Abs() > time.Minute {
		t.Fatalf("last-known-good %q: %v", raw, err)
	}

	// A cam whose clock now reads an hour before what it last knew.
	ahead := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if err := os.WriteFile(filepath.Join(dir, "clock.lastgood"), []byte(ahead+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"system", "auto"} {
		t.Run(mode, func(t *testing.T) {
			// auto: a dead NTP port, so only the system clock is there.
			p := start(t, dir, "--clock="+mode, "--ntp-servers=127.0.0.1:"+strconv.Itoa(chronytest.FreePort(t)))
			checkUnavailable(t, p.do("POST", "/api/login", `{"user":"owner","pass":"x"}`))
			if c := p.clock(); c["trusted"] != false {
				t.Errorf("healthz clock = %v", c)
			}
			p.stop()
		})
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "clock.lastgood")); strings.TrimSpace(string(got)) != ahead {
		t.Errorf("an untrusted clock overwrote the last-known-good time: %q", got)
	}
}

// TestSetSystemClockNeedsCapability: --set-system-clock without CAP_SYS_TIME
// stops camd at start with a message that says what is missing.
func TestSetSystemClockNeedsCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	dir, err := os.MkdirTemp("", "camd-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := camd(t)
	for _, p := range []string{dir, filepath.Dir(bin)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--clock=ntp", "--ntp-servers=127.0.0.1:"+strconv.Itoa(chronytest.FreePort(t)),
		"--set-system-clock", "--listen=127.0.0.1:0", "--data-dir="+data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "--set-system-clock needs CAP_SYS_TIME") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

// thirtyYears is how far ahead the lying NTP server was.
const thirtyYears = 30 * 365 * 24 * time.Hour

// issuedAt returns a token's iat, read without checking its signature: the
// test only looks at the date camd put in it.
func issuedAt(t *testing.T, tok string) time.Time {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var claims struct{ Iat int64 }
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("token payload %s: %v", raw, err)
	}
	return time.Unix(claims.Iat, 0).UTC()
}

// waitJudged waits until camd has judged srv's first answer: it synced to
// it, or it refused it and asked again (camd retries after 1 s).
func (p *proc) waitJudged(srv *ntptest.Server) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for srv.Queries() < 2 && p.clock()["synced"] != true {
		if time.Now().After(deadline) {
			p.t.Fatalf("the NTP server got %d queries in 20 s and camd did not sync", srv.Queries())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastGood reads the last-known-good time camd left in dir; zero if none.
func lastGood(t *testing.T, dir string) time.Time {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "clock.lastgood"))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}
	}
	if err != nil {
		t.Fatal(err)
	}
	saved, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("clock.lastgood %q: %v", raw, err)
	}
	return saved
}

// TestClockOneServerFarAhead is issue 13's reproduction: one NTP server 30
// years ahead, answering a cam whose clock is not trusted yet, must neither
// set camd's time nor raise the last-known-good floor; after a restart with
// an honest server, login works.
func TestClockOneServerFarAhead(t *testing.T) {
	// --clock ntp: untrusted until the first sync, as auto is on a cam
	// whose RTC lost its time (that case runs in-process, in
	// platform/ntpclock, where the system clock can read 1970).
	dir := t.TempDir()
	liar := ntptest.Start(t, ntptest.Behaviour{Offset: thirtyYears})
	p := start(t, dir, "--clock=ntp", "--ntp-servers="+liar.Addr)
	p.waitJudged(liar)
	c := p.clock()
	t.Logf("after one +30-year answer: healthz clock %v", c)
	r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+p.Password+`"}`)
	if r.Status == http.StatusOK {
		t.Errorf("login got a token issued at %s", issuedAt(t, r.field(t, "token").(string)).Format(time.RFC3339))
	} else {
		checkUnavailable(t, r)
	}
	if c["trusted"] != false || c["synced"] != false {
		t.Errorf("healthz clock %v after one +30-year answer, want neither trusted nor synced", c)
	}
	pw := p.Password // printed at the first start only
	p.stop()
	if saved := lastGood(t, dir); saved.After(time.Now().Add(time.Hour)) {
		t.Errorf("the last-known-good floor was saved as %s", saved.Format(time.RFC3339))
	}

	honest := ntptest.Start(t, ntptest.Behaviour{})
	p = start(t, dir, "--clock=ntp", "--ntp-servers="+honest.Addr)
	p.waitJudged(honest)
	r = p.do("POST", "/api/login", `{"user":"owner","pass":"`+pw+`"}`)
	if r.Status != http.StatusOK {
		t.Fatalf("after a restart with an honest server, login: %d %s; healthz clock %v", r.Status, r.Body, p.clock())
	}
	iat := issuedAt(t, r.field(t, "token").(string))
	t.Logf("after the restart with an honest server: healthz clock %v, token iat %s", p.clock(), iat.Format(time.RFC3339))
	if d := time.Since(iat).Abs(); d > time.Minute {
		t.Errorf("token issued at %s, %s from now", iat.Format(time.RFC3339), d)
	}
}

// TestClockFloorFarAheadRecovers: a last-known-good time 30 years ahead, as
// camd before issue 13's fix saved after one lying answer, needs no file
// surgery. Servers that agree on the real time discard it and login works;
// one server alone is refused, with the way out in the log.
func TestClockFloorFarAheadRecovers(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		servers int
		ok      bool
	}{
		{name: "ntp, two honest servers", mode: "ntp", servers: 2, ok: true},
		{name: "auto, two honest servers", mode: "auto", servers: 2, ok: true},
		{name: "ntp, one honest server", mode: "ntp", servers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			far := time.Now().Add(thirtyYears).UTC()
			if err := os.WriteFile(filepath.Join(dir, "clock.lastgood"), []byte(far.Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var addrs []string
			var first *ntptest.Server
			for i := range tt.servers {
				s := ntptest.Start(t, ntptest.Behaviour{Offset: time.Duration(i) * 100 * time.Millisecond})
				first = cmp.Or(first, s)
				addrs = append(addrs, s.Addr)
			}
			p := start(t, dir, "--clock="+tt.mode, "--ntp-servers="+strings.Join(addrs, ","))
			p.waitJudged(first)
			r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+p.Password+`"}`)
			if !tt.ok {
				checkUnavailable(t, r)
				if !strings.Contains(p.logs(), "two servers that agree on it discard that floor") {
					t.Errorf("the refusal does not say how to recover:\n%s", p.logs())
				}
				return
			}
			if r.Status != http.StatusOK {
				t.Fatalf("login: %d %s; healthz clock %v", r.Status, r.Body, p.clock())
			}
			if iat := issuedAt(t, r.field(t, "token").(string)); time.Since(iat).Abs() > time.Minute {
				t.Errorf("token issued at %s", iat.Format(time.RFC3339))
			}
			p.stop()
			if saved := lastGood(t, dir); time.Since(saved).Abs() > time.Minute {
				t.Errorf("clock.lastgood holds %s after the recovery, want about now", saved.Format(time.RFC3339))
			}
		})
	}
}
