package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	initScript  = "../deploy/camd.init"
	unitFile    = "../deploy/camd.service"
	clockDropIn = "../deploy/camd-set-system-clock.conf"
)

// initEnv runs deploy/camd.init under busybox sh, as on a cam.
type initEnv struct {
	t       *testing.T
	busybox string
	bin     string // the camd binary
	env     []string
	pidfile string
	log     string
	listen  string // camd's address, from CAMD_ARGS
}

// newInitEnv sets up the script's files in a temporary directory. PATH holds
// only links to busybox, so a command the script needs that busybox lacks
// fails here rather than on a cam.
func newInitEnv(t *testing.T, port int) *initEnv {
	t.Helper()
	busybox := needTool(t, "busybox", "busybox-static")
	dir := t.TempDir()
	e := &initEnv{
		t:       t,
		busybox: busybox,
		bin:     camd(t),
		pidfile: filepath.Join(dir, "run", "camd.pid"),
		log:     filepath.Join(dir, "log", "camd.log"),
		listen:  fmt.Sprintf("127.0.0.1:%d", port),
	}
	pathDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(pathDir, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if err := os.Symlink(busybox, filepath.Join(pathDir, applet)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing from the host may steer the script or camd: no PATH, no
	// CAMD_* variable, no /etc/default/camd.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "DAEMON", k == "PIDFILE", k == "LOG", strings.HasPrefix(k, "CAMD_"):
			continue
		}
		e.env = append(e.env, kv)
	}
	e.env = append(e.env,
		"PATH="+pathDir,
		"DAEMON="+e.bin,
		"PIDFILE="+e.pidfile,
		"LOG="+e.log,
		"CAMD_DATA_DIR="+filepath.Join(dir, "data"),
		"CAMD_DEFAULTS="+filepath.Join(dir, "no-defaults"),
		"CAMD_ARGS=--listen "+e.listen+" --clock system",
	)
	return e
}

// run runs the script with verb and returns its exit code and output.
func (e *initEnv) run(verb string, extraEnv ...string) (int, string) {
	e.t.Helper()
	// start and stop each wait at most about 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.busybox, "sh", initScript, verb)
	cmd.Env = append(append([]string{}, e.env...), extraEnv...)
	// Should camd ever inherit the output pipe, do not wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		e.t.Fatalf("camd.init %s: %v\n%s", verb, err, out)
	}
	e.t.Logf("camd.init %s: exit %d\n%s", verb, cmd.ProcessState.ExitCode(), out)
	return cmd.ProcessState.ExitCode(), string(out)
}

// mustRun runs the script and fails unless it exits with want.
func (e *initEnv) mustRun(verb string, want int) string {
	e.t.Helper()
	code, out := e.run(verb)
	if code != want {
		e.t.Fatalf("camd.init %s: exit %d, want %d\n%s", verb, code, want, out)
	}
	return out
}

// pid returns the pid in the pid file, or 0 when there is none.
func (e *initEnv) pid() int {
	e.t.Helper()
	b, err := os.ReadFile(e.pidfile)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		e.t.Fatalf("pid file holds %q", b)
	}
	return pid
}

// isCamd reports whether pid is a live process running our camd binary. A
// zombie has no exe link, so it counts as gone.
func (e *initEnv) isCamd(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == e.bin
}

// instances returns the pids of the camds listening on our address.
func (e *initEnv) instances() []int {
	e.t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		e.t.Fatal(err)
	}
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !e.isCamd(pid) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), "\x00"+e.listen+"\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// running checks that the pid file names a live camd that serves /healthz,
// and returns its pid.
func (e *initEnv) running() int {
	e.t.Helper()
	pid := e.pid()
	if pid == 0 || !e.isCamd(pid) {
		e.t.Fatalf("pid file names %d, which is not a running %s", pid, e.bin)
	}
	url := "http://" + e.listen + "/healthz"
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.instances(); len(got) != 1 || got[0] != pid {
		e.t.Fatalf("camd processes on %s: %v, want only %d", e.listen, got, pid)
	}
	return pid
}

// stopped runs stop on a running camd and checks that it exited gracefully.
func (e *initEnv) stopped() {
	e.t.Helper()
	pid := e.running()
	before := strings.Count(e.logText(), "msg=stopped")
	e.mustRun("stop", 0)
	if e.isCamd(pid) {
		e.t.Fatalf("camd %d still runs after stop", pid)
	}
	if _, err := os.Stat(e.pidfile); !errors.Is(err, os.ErrNotExist) {
		e.t.Fatalf("pid file after stop: %v", err)
	}
	// camd logs msg=stopped only when its graceful shutdown completed, so
	// this tells SIGTERM from the script's SIGKILL fallback.
	if after := strings.Count(e.logText(), "msg=stopped"); after != before+1 {
		e.t.Fatalf("camd did not log a graceful stop (%d stopped lines, want %d):\n%s", after, before+1, e.logText())
	}
}

func (e *initEnv) logText() string {
	e.t.Helper()
	b, err := os.ReadFile(e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// TestInitScript drives deploy/camd.init as a cam's rc would: status, start,
// start again, stale pid files, stop, restart.
func TestInitScript(t *testing.T) {
	e := newInitEnv(t, freePort(t))
	// Whatever fails, leave no camd behind: kill every one on our address.
	t.Cleanup(func() {
		for _, pid := range e.instances() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	if out := e.mustRun("status", 3); !strings.Contains(out, "camd is not running") {
		t.Fatalf("status before start: %q", out)
	}

	e.mustRun("start", 0)
	first := e.running()
	if !strings.Contains(e.logText(), "initial owner password: ") {
		t.Fatalf("log has no initial owner password:\n%s", e.logText())
	}
	if fi, err := os.Stat(e.log); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log holds the password, want mode 0600: %v %v", fi.Mode(), err)
	}

	// Respawn-safe: a second start leaves the running camd alone.
	if out := e.mustRun("start", 0); !strings.Contains(out, "already running") {
		t.Fatalf("second start: %q", out)
	}
	if pid := e.running(); pid != first {
		t.Fatalf("second start: pid %d, want %d", pid, first)
	}
	if out := e.mustRun("status", 0); !strings.Contains(out, fmt.Sprintf("camd is running (pid %d)", first)) {
		t.Fatalf("status: %q", out)
	}

	e.stopped()

	// A pid file left by a crash or a power cut, naming a dead process.
	dead := exec.Command(e.busybox, "true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	e.writePid(dead.ProcessState.Pid())
	e.mustRun("status", 3)
	e.mustRun("start", 0)
	if pid := e.running(); pid == dead.ProcessState.Pid() || pid == first {
		t.Fatalf("start over a stale pid file: pid %d", pid)
	}
	e.stopped()

	// A pid file naming a live process that is not camd (its pid reused):
	// neither stop nor start may touch that process.
	other := exec.Command(e.busybox, "sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	e.writePid(other.Process.Pid)
	e.mustRun("status", 3)
	e.mustRun("stop", 0)
	e.writePid(other.Process.Pid)
	e.mustRun("start", 0)
	third := e.running()
	if third == other.Process.Pid {
		t.Fatalf("pid file still names the other process %d", third)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the other process is gone: %v", err)
	}

	e.mustRun("restart", 0)
	if pid := e.running(); pid == third || e.isCamd(third) {
		t.Fatalf("restart: pid %d, old %d still running: %v", pid, third, e.isCamd(third))
	}
	if n := strings.Count(e.logText(), "msg=stopped"); n != 3 {
		t.Fatalf("restart did not stop camd gracefully (%d stopped lines, want 3)", n)
	}

	e.stopped()
	if out := e.mustRun("stop", 0); !strings.Contains(out, "not running") {
		t.Fatalf("stop when stopped: %q", out)
	}
	e.mustRun("status", 3)

	// A camd that exits at once (here: its port is taken) is a failed start:
	// exit 1, the log's last lines, and no pid file left behind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, out := e.run("start", "CAMD_ARGS=--listen "+ln.Addr().String()+" --clock system")
	if code != 1 || !strings.Contains(out, "address already in use") {
		t.Fatalf("start on a taken port: exit %d, want 1 and the log's error:\n%s", code, out)
	}
	if _, err := os.Stat(e.pidfile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file after a failed start: %v", err)
	}
	e.mustRun("status", 3)
}

func (e *initEnv) writePid(pid int) {
	e.t.Helper()
	if err := os.WriteFile(e.pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// unitDirectives parses a systemd unit file into "Section.Key" -> values in
// order. Continuation lines are not used in our files and are refused.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: continuation lines are not expected", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a directive: %q", path, n, line)
			}
			key := section + "." + strings.TrimSpace(k)
			out[key] = append(out[key], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSystemdUnit checks deploy/camd.service and its clock drop-in: the
// hardening they must have, then systemd's own verdict.
func TestSystemdUnit(t *testing.T) {
	unit := unitDirectives(t, unitFile)
	// The last assignment of a key is the one that counts.
	want := map[string]string{
		"Service.Type":                    "notify", // camd sends READY=1 (platform/sdnotify)
		"Service.NotifyAccess":            "main",
		"Service.ExecStart":               "/usr/bin/camd serve",
		"Service.Restart":                 "on-failure",
		"Service.DynamicUser":             "yes",
		"Service.StateDirectory":          "camd",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectKernelLogs":       "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.ProtectClock":            "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.RestrictNamespaces":      "yes",
		"Service.LockPersonality":         "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.SystemCallArchitectures": "native",
		"Service.UMask":                   "0077",
		"Service.KillSignal":              "SIGTERM",
		"Service.TimeoutStopSec":          "15",
		"Service.CapabilityBoundingSet":   "",
		"Service.AmbientCapabilities":     "",
	}
	for k, v := range want {
		got, ok := unit[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("%s: %s = %q, want %q", unitFile, k, got, v)
		}
	}
	if !slices.Contains(unit["Service.Environment"], "CAMD_DATA_DIR=/var/lib/camd") {
		t.Errorf("%s: no Environment=CAMD_DATA_DIR=/var/lib/camd", unitFile)
	}
	for _, k := range []string{"Service.CapabilityBoundingSet", "Service.AmbientCapabilities"} {
		if len(unit[k]) != 1 {
			t.Errorf("%s: %s set %d times, want once and empty", unitFile, k, len(unit[k]))
		}
	}
	for k, vs := range unit {
		for _, v := range vs {
			if strings.Contains(v, "CAP_SYS_TIME") {
				t.Errorf("%s: %s=%s: CAP_SYS_TIME belongs in the drop-in only", unitFile, k, v)
			}
		}
	}

	dropIn := unitDirectives(t, clockDropIn)
	for k, v := range map[string]string{
		"Service.Environment":           "CAMD_SET_SYSTEM_CLOCK=true",
		"Service.CapabilityBoundingSet": "CAP_SYS_TIME",
		"Service.AmbientCapabilities":   "CAP_SYS_TIME",
		"Service.ProtectClock":          "no",
	} {
		if got := dropIn[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s = %q, want %q", clockDropIn, k, got, v)
		}
	}
	if t.Failed() {
		return
	}

	analyze := needTool(t, "systemd-analyze", "systemd")
	// verify refuses an ExecStart binary that does not exist, so the copy
	// runs the camd just built.
	dir := t.TempDir()
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nExecStart=/usr/bin/camd ", "\nExecStart="+camd(t)+" ", 1)
	service := filepath.Join(dir, "camd.service")
	writeFile(t, service, text)

	// verify reports unknown or malformed directives but still exits 0, so
	// any line about our files is a failure. Lines about other units (the
	// host's targets) are not ours to fix.
	verify := func(t *testing.T) {
		t.Helper()
		out, err := exec.Command(analyze, "verify", service).CombinedOutput()
		var bad []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.Contains(l, "camd") {
				bad = append(bad, l)
			}
		}
		if err != nil || len(bad) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
	// The check must be able to fail: an unknown directive is reported.
	t.Run("verify catches errors", func(t *testing.T) {
		writeFile(t, service, strings.Replace(text, "[Service]\n", "[Service]\nProtectEverything=yes\n", 1))
		defer writeFile(t, service, text)
		out, _ := exec.Command(analyze, "verify", service).CombinedOutput()
		if !strings.Contains(string(out), "ProtectEverything") {
			t.Fatalf("systemd-analyze verify did not report an unknown directive:\n%s", out)
		}
	})
	t.Run("verify unit", verify)

	// The offline security review resolves the unit and its drop-ins as
	// systemd would, so it shows what the drop-in changes.
	exposed := func(t *testing.T) map[string]bool {
		t.Helper()
		out, err := exec.Command(analyze, "security", "--offline=true", "--json=short", service).Output()
		if err != nil {
			t.Fatalf("systemd-analyze security: %v\n%s", err, out)
		}
		var checks []struct {
			Name string
			Set  bool
		}
		if err := json.Unmarshal(out, &checks); err != nil {
			t.Fatalf("systemd-analyze security: %v\n%s", err, out)
		}
		m := map[string]bool{}
		for _, c := range checks {
			m[c.Name] = !c.Set // Set means the service is protected
		}
		return m
	}
	clockChecks := []string{"CapabilityBoundingSet=~CAP_SYS_TIME", "ProtectClock=", "SystemCallFilter=~@clock"}
	t.Run("no clock access", func(t *testing.T) {
		m := exposed(t)
		for _, c := range clockChecks {
			if exp, ok := m[c]; !ok || exp {
				t.Errorf("%s: exposed %v (reported %v), want protected", c, exp, ok)
			}
		}
	})

	dropDir := filepath.Join(dir, "camd.service.d")
	if err := os.Mkdir(dropDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err = os.ReadFile(clockDropIn)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dropDir, "set-system-clock.conf"), string(src))
	t.Run("verify with drop-in", verify)
	t.Run("clock access with drop-in", func(t *testing.T) {
		m := exposed(t)
		for _, c := range clockChecks {
			if !m[c] {
				t.Errorf("%s: protected, want granted by the drop-in", c)
			}
		}
	})
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
