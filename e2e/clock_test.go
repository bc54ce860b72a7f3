package e2e

import (
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

// TestNTPWithChrony is the README's clock walk-through: camd --clock ntp
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
	if r := p.admin(p.Password, "POST", "/admin/ui/clients", "name=porch-esp32",
		"Content-Type: application/x-www-form-urlencoded", "Sec-Fetch-Site: same-origin"); r.Status != http.StatusServiceUnavailable ||
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
