package ntpclock

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/ntpclock/ntptest"
)

// tenYears is far beyond the panic threshold.
const tenYears = 10 * 365 * 24 * time.Hour

// base1970 is where a cam without an RTC boots.
var base1970 = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeSystem is a local clock that starts at base, runs at real speed and can
// be stepped, as an OS clock set by hand or by another daemon.
type fakeSystem struct {
	base  time.Time
	start time.Time
	step  atomic.Int64
}

func newFakeSystem(base time.Time) *fakeSystem {
	return &fakeSystem{base: base.Round(0), start: time.Now()}
}

func (f *fakeSystem) Now() time.Time {
	return f.base.Add(time.Since(f.start) + time.Duration(f.step.Load()))
}

// Step moves the local clock by d.
func (f *fakeSystem) Step(d time.Duration) { f.step.Add(int64(d)) }

func newDir(t *testing.T) datadir.Dir {
	t.Helper()
	d, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testConfig is a config for fast tests. The real setSystemClock must never
// run in a test, so SetTime is always injected; by default it fails the test,
// as it must only be called with SetSystemClock.
func testConfig(t *testing.T, mode string, servers ...string) Config {
	t.Helper()
	return Config{
		Mode:       mode,
		Servers:    servers,
		Timeout:    300 * time.Millisecond,
		Floor:      time.Now().Add(-24 * time.Hour),
		Dir:        newDir(t),
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		SetTime: func(time.Time) error {
			t.Error("SetTime called although SetSystemClock is false")
			return errors.New("test: SetTime must not be called")
		},
	}
}

func newClock(t *testing.T, cfg Config) *Clock {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func addrs(servers ...*ntptest.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Addr)
	}
	return out
}

// near fails the test unless got is within tol of want.
func near(t *testing.T, what string, got, want time.Time, tol time.Duration) {
	t.Helper()
	if d := got.Sub(want); d.Abs() > tol {
		t.Errorf("%s = %s, want within %s of %s (off by %s)", what, got.Format(time.RFC3339Nano), tol, want.Format(time.RFC3339Nano), d)
	}
}

// nearDur fails the test unless got is within tol of want.
func nearDur(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if (got - want).Abs() > tol {
		t.Errorf("%s = %s, want within %s of %s", what, got, tol, want)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedUDPAddr is a loopback UDP address with nobody listening.
func closedUDPAddr(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().String()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// run starts c.Run and returns a function that stops it and waits for it to
// return. The test's cleanup stops it too.
func run(t *testing.T, c *Clock) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func writeCount(c *Clock) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.writes
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		servers []string
		setSys  bool
		wantErr string // empty: New succeeds
	}{
		{name: "empty mode", mode: "", servers: []string{"127.0.0.1:1"}, wantErr: `clock mode ""`},
		{name: "bad mode", mode: "rtc", servers: []string{"127.0.0.1:1"}, wantErr: `clock mode "rtc": want auto, ntp or system`},
		{name: "mode is case sensitive", mode: "NTP", servers: []string{"127.0.0.1:1"}, wantErr: `clock mode "NTP"`},
		{name: "ntp without servers", mode: clock.ModeNTP, wantErr: "no NTP servers"},
		{name: "auto without servers", mode: clock.ModeAuto, wantErr: "no NTP servers"},
		{name: "system without servers", mode: clock.ModeSystem},
		{name: "system with set-system-clock", mode: clock.ModeSystem, setSys: true, wantErr: "cannot be used with --clock system"},
		{name: "ntp", mode: clock.ModeNTP, servers: []string{"127.0.0.1:1"}},
		{name: "auto", mode: clock.ModeAuto, servers: []string{"127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, tt.mode, tt.servers...)
			cfg.SetSystemClock = tt.setSys
			c, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.Status().Mode != tt.mode {
					t.Errorf("Status().Mode = %q, want %q", c.Status().Mode, tt.mode)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New: %v, want an error containing %q", err, tt.wantErr)
			}
			if c != nil {
				t.Error("New returned a clock with its error")
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c := newClock(t, Config{Mode: clock.ModeSystem, Dir: newDir(t), SetTime: func(time.Time) error { return nil }})
	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{
		{"Interval", c.cfg.Interval, DefaultInterval},
		{"Timeout", c.cfg.Timeout, DefaultTimeout},
		{"MinBackoff", c.cfg.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", c.cfg.MaxBackoff, DefaultMaxBackoff},
		{"PersistEvery", c.cfg.PersistEvery, DefaultPersistEvery},
	} {
		if d.got != d.want {
			t.Errorf("%s = %s, want the default %s", d.name, d.got, d.want)
		}
	}
	if c.cfg.SystemTime == nil || c.cfg.Query == nil || c.log == nil {
		t.Error("New left a nil seam or logger")
	}
	// Negative durations are as good as unset.
	c = newClock(t, Config{Mode: clock.ModeSystem, Dir: newDir(t), Timeout: -time.Second, SetTime: func(time.Time) error { return nil }})
	if c.cfg.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %s for a negative setting, want %s", c.cfg.Timeout, DefaultTimeout)
	}
}

// hasCapSysTime reads CapEff independently of canSetSystemClock.
func hasCapSysTime(t *testing.T) bool {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s*([0-9a-fA-F]+)$`).FindSubmatch(raw)
	if m == nil {
		t.Skip("no CapEff in /proc/self/status")
	}
	caps, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return caps&(1<<25) != 0
}

func TestSetSystemClock(t *testing.T) {
	const offset = 30 * time.Second
	srv := ntptest.Start(t, ntptest.Behaviour{Offset: offset})
	log, logs := testlog.New()
	var (
		mu    sync.Mutex
		calls []time.Time
		fail  error
	)
	cfg := testConfig(t, clock.ModeNTP, srv.Addr)
	cfg.Log = log
	cfg.SetSystemClock = true
	cfg.SetTime = func(tm time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, tm)
		return fail
	}

	c, err := New(cfg)
	if os.Getenv(noCapEnv) != "" && hasCapSysTime(t) {
		t.Fatal("started without CAP_SYS_TIME but still has it")
	}
	if !hasCapSysTime(t) {
		if err == nil || !strings.Contains(err.Error(), "CAP_SYS_TIME") {
			t.Fatalf("New without CAP_SYS_TIME: %v, want an error naming CAP_SYS_TIME", err)
		}
		t.Logf("New without CAP_SYS_TIME refused: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("New with CAP_SYS_TIME: %v", err)
	}
	if len(calls) != 0 {
		t.Fatalf("SetTime called %d times before any sync", len(calls))
	}
	for i := 1; i <= 2; i++ {
		if err := c.Sync(context.Background()); err != nil {
			t.Fatalf("Sync %d: %v", i, err)
		}
		mu.Lock()
		n := len(calls)
		var last time.Time
		if n > 0 {
			last = calls[n-1]
		}
		mu.Unlock()
		if n != i {
			t.Fatalf("after %d syncs SetTime was called %d times", i, n)
		}
		near(t, "time given to SetTime", last, time.Now().Add(offset), time.Second)
	}

	// A failure to set the OS clock is logged, not fatal: camd's own time
	// is still right.
	mu.Lock()
	fail = errors.New("operation not permitted")
	mu.Unlock()
	if err := c.Sync(context.Background()); err != nil {
		t.Fatalf("Sync with a failing SetTime: %v", err)
	}
	if len(logs.Lines("level=ERROR", "could not set the system clock", "operation not permitted")) != 1 {
		t.Errorf("the SetTime failure was not logged once:\n%s", logs)
	}
	if !c.Status().Synced {
		t.Error("not synced after a sync whose SetTime failed")
	}
}

func TestCanSetSystemClock(t *testing.T) {
	err := canSetSystemClock()
	if has := hasCapSysTime(t); has != (err == nil) {
		t.Errorf("canSetSystemClock() = %v with CAP_SYS_TIME %v", err, has)
	}
}

// noCapEnv marks the child process of TestSetSystemClockWithoutCapability.
const noCapEnv = "NTPCLOCK_TEST_WITHOUT_CAP_SYS_TIME"

// TestSetSystemClockWithoutCapability runs TestSetSystemClock again in a
// child without CAP_SYS_TIME, so that both of its branches run wherever the
// tests have the capability (as root).
func TestSetSystemClockWithoutCapability(t *testing.T) {
	if os.Getenv(noCapEnv) != "" {
		t.Skip("already the child")
	}
	if !hasCapSysTime(t) {
		t.Skip("no CAP_SYS_TIME: TestSetSystemClock already ran without it")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv to drop CAP_SYS_TIME")
	}
	cmd := exec.Command(setpriv, "--bounding-set=-sys_time", "--inh-caps=-sys_time", "--",
		os.Args[0], "-test.run=^TestSetSystemClock$", "-test.count=1", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), noCapEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("TestSetSystemClock without CAP_SYS_TIME: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestSetSystemClock ") || !strings.Contains(string(out), "New without CAP_SYS_TIME refused") {
		t.Fatalf("TestSetSystemClock did not pass without CAP_SYS_TIME:\n%s", out)
	}
}

func TestNowBeforeAndAfterSync(t *testing.T) {
	tests := []struct {
		name string
		mode string
	}{
		{"ntp", clock.ModeNTP},
		{"auto", clock.ModeAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ntptest.Start(t, ntptest.Behaviour{})
			sys := newFakeSystem(base1970)
			cfg := testConfig(t, tt.mode, srv.Addr)
			cfg.SystemTime = sys.Now
			c := newClock(t, cfg)

			if y := c.Now().Year(); y != 1970 {
				t.Errorf("Now() before sync is in %d, want the local clock's 1970", y)
			}
			if c.Trusted() {
				t.Error("a 1970 clock is trusted before any sync")
			}
			if st := c.Status(); st.Trusted || st.Synced || !st.LastSync.IsZero() || st.Server != "" {
				t.Errorf("Status() before sync = %+v", st)
			}

			if err := c.Sync(context.Background()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			near(t, "Now() after sync", c.Now(), time.Now(), time.Second)
			if !c.Trusted() {
				t.Error("not trusted after a good sync")
			}
			st := c.Status()
			if !st.Trusted || !st.Synced || st.Mode != tt.mode {
				t.Errorf("Status() after sync = %+v", st)
			}
			nearDur(t, "Status().Offset", st.Offset, time.Now().Sub(sys.Now()), time.Second)
		})
	}
	t.Run("system", func(t *testing.T) {
		cfg := testConfig(t, clock.ModeSystem)
		cfg.SystemTime = newFakeSystem(base1970).Now
		c := newClock(t, cfg)
		if c.Trusted() || c.Status().Trusted {
			t.Error("mode system trusts a 1970 clock")
		}
	})
	t.Run("real clock above the floor", func(t *testing.T) {
		for _, mode := range []string{clock.ModeAuto, clock.ModeSystem} {
			c := newClock(t, testConfig(t, mode, "127.0.0.1:1"))
			if !c.Trusted() {
				t.Errorf("mode %s does not trust the real clock above the floor", mode)
			}
			near(t, "Now()", c.Now(), time.Now(), time.Second)
		}
		// Mode ntp trusts nothing before a sync, however good the clock.
		if newClock(t, testConfig(t, clock.ModeNTP, "127.0.0.1:1")).Trusted() {
			t.Error("mode ntp trusts the clock before any sync")
		}
	})
}

// After a sync, Now runs on the monotonic clock: stepping the OS clock does
// not move it.
func TestNowIgnoresSystemClockSteps(t *testing.T) {
	tests := []struct {
		name string
		base time.Time
		step time.Duration
	}{
		{"real clock forward", time.Now(), 5 * time.Hour},
		{"real clock back", time.Now(), -5 * time.Hour},
		{"1970 clock forward", base1970, 5 * time.Hour},
		{"1970 clock back to 1969", base1970, -5 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ntptest.Start(t, ntptest.Behaviour{})
			sys := newFakeSystem(tt.base)
			cfg := testConfig(t, clock.ModeNTP, srv.Addr)
			cfg.SystemTime = sys.Now
			c := newClock(t, cfg)
			if err := c.Sync(context.Background()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			near(t, "Now() after sync", c.Now(), time.Now(), time.Second)
			before := sys.Now()
			sys.Step(tt.step)
			nearDur(t, "the local clock's step", sys.Now().Sub(before), tt.step, time.Second)
			near(t, "Now() after the local clock stepped", c.Now(), time.Now(), time.Second)
			if !c.Trusted() {
				t.Error("a step of the local clock after a sync made the clock untrusted")
			}
		})
	}
}

func TestRunBackoffThenRecovery(t *testing.T) {
	srv := ntptest.Start(t, ntptest.Behaviour{Silent: true})
	log, logs := testlog.New()
	cfg := testConfig(t, clock.ModeNTP, srv.Addr)
	cfg.Timeout = 100 * time.Millisecond
	cfg.Log = log
	c := newClock(t, cfg)

	// Readers race with the loop; -race checks the locking.
	var readers sync.WaitGroup
	quit := make(chan struct{})
	readers.Go(func() {
		for {
			select {
			case <-quit:
				return
			default:
				_ = c.Status()
				_ = c.Now()
				_ = c.Trusted()
				time.Sleep(time.Millisecond)
			}
		}
	})
	defer func() { close(quit); readers.Wait() }()

	stop := run(t, c)
	waitFor(t, "three queries to the silent server", func() bool { return srv.Queries() >= 3 })
	st := c.Status()
	if st.Synced || st.Trusted {
		t.Fatalf("synced or trusted with only a silent server: %+v", st)
	}
	if st.NextSync.IsZero() {
		t.Error("Status().NextSync is zero while retrying")
	}

	// Wait for the backoff to reach its cap: 20, 40, 80, 160, 200, 200 ms.
	retryRE := regexp.MustCompile(`retry_in=(\S+)`)
	retries := func() []time.Duration {
		var out []time.Duration
		for _, line := range logs.Lines("level=WARN", "NTP sync failed") {
			m := retryRE.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("no retry_in in %q", line)
			}
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("retry_in in %q: %v", line, err)
			}
			out = append(out, d)
		}
		return out
	}
	waitFor(t, "six failed syncs", func() bool { return len(retries()) >= 6 })
	got := retries()
	if got[0] != cfg.MinBackoff {
		t.Errorf("first retry in %s, want MinBackoff %s (all: %v)", got[0], cfg.MinBackoff, got)
	}
	for i := 1; i < len(got); i++ {
		want := min(2*got[i-1], cfg.MaxBackoff)
		if got[i] != want {
			t.Errorf("retry %d in %s after %s, want %s (all: %v)", i, got[i], got[i-1], want, got)
		}
	}
	if got[len(got)-1] != cfg.MaxBackoff {
		t.Errorf("backoff did not reach MaxBackoff %s: %v", cfg.MaxBackoff, got)
	}
	// Each query is either failed and logged or still in flight.
	if q, failed := srv.Queries(), len(retries()); q > failed+1 {
		t.Errorf("%d queries for %d failed syncs", q, failed)
	}

	srv.Set(ntptest.Behaviour{})
	waitFor(t, "a sync once the server answers", func() bool { return c.Status().Synced })
	st = c.Status()
	if !st.Trusted || st.Server != srv.Addr {
		t.Errorf("Status() after recovery = %+v", st)
	}
	// Once synced, the next sync is an Interval (1 h, ±10%) away.
	if d := st.NextSync.Sub(c.Now()); d < 50*time.Minute || d > 70*time.Minute {
		t.Errorf("next sync in %s after a success, want about DefaultInterval %s", d, DefaultInterval)
	}
	queries := srv.Queries()
	time.Sleep(300 * time.Millisecond)
	if q := srv.Queries(); q != queries {
		t.Errorf("%d more queries after the sync succeeded", q-queries)
	}
	stop()
}

func TestRunModeSystemSendsNothing(t *testing.T) {
	srv := ntptest.Start(t, ntptest.Behaviour{})
	cfg := testConfig(t, clock.ModeSystem, srv.Addr)
	c := newClock(t, cfg)
	stop := run(t, c)
	time.Sleep(300 * time.Millisecond)
	stop()
	if q := srv.Queries(); q != 0 {
		t.Errorf("mode system sent %d NTP queries", q)
	}
	st := c.Status()
	if !st.Trusted || !c.Trusted() {
		t.Error("mode system does not trust the real clock above the floor")
	}
	if st.Synced || !st.NextSync.IsZero() {
		t.Errorf("mode system Status() = %+v, want not synced and no sync planned", st)
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 9, 10, 11, 100, time.Millisecond, time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		t.Run(d.String(), func(t *testing.T) {
			lo, hi := d-d/10, d+d/10
			seen := map[time.Duration]bool{}
			for range 2000 {
				j := jitter(d)
				if j < lo || j > hi {
					t.Fatalf("jitter(%s) = %s, outside [%s, %s]", d, j, lo, hi)
				}
				seen[j] = true
			}
			// From 10 ns on there is room to spread; 2000 draws from
			// three or more values cannot all be the same.
			if d >= 10 && len(seen) < 2 {
				t.Errorf("jitter(%s) always returned the same value", d)
			}
		})
	}
}
