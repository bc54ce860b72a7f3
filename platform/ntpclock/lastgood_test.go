package ntpclock

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/clock"
	"camd/platform/ntpclock/ntptest"
)

func TestLastGoodFileLoad(t *testing.T) {
	stamp := time.Date(2027, 3, 4, 5, 6, 7, 890123456, time.UTC)
	tests := []struct {
		name    string
		content *string // nil: no file
		want    time.Time
		wantErr bool
	}{
		{name: "missing"},
		{name: "saved", content: ptr(stamp.Format(time.RFC3339Nano) + "\n"), want: stamp},
		{name: "no newline, other zone", content: ptr(stamp.In(time.FixedZone("X", 3600)).Format(time.RFC3339Nano)), want: stamp},
		{name: "blanks around", content: ptr("  " + stamp.Format(time.RFC3339) + " \r\n"), want: stamp.Truncate(time.Second)},
		{name: "empty", content: ptr(""), wantErr: true},
		{name: "garbage", content: ptr("yesterday\n"), wantErr: true},
		{name: "unix seconds", content: ptr("1700000000\n"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := lastGoodFile{path: newDir(t).Join(LastGoodFileName)}
			if tt.content != nil {
				if err := os.WriteFile(f.path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := f.load()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), f.path) {
					t.Fatalf("load = %v, %v; want an error naming %s", got, err, f.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("load = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		// A directory where the file should be: not "missing", an error.
		f := lastGoodFile{path: newDir(t).Join(LastGoodFileName)}
		if err := os.Mkdir(f.path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := f.load(); err == nil {
			t.Error("load of a directory succeeded")
		}
	})
	t.Run("round trip", func(t *testing.T) {
		f := lastGoodFile{path: newDir(t).Join(LastGoodFileName)}
		now := time.Now()
		if err := f.save(now); err != nil {
			t.Fatal(err)
		}
		got, err := f.load()
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(now) {
			t.Errorf("load after save(%v) = %v", now, got)
		}
		info, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", info.Mode().Perm())
		}
	})
}

func ptr(s string) *string { return &s }

func TestNewFloor(t *testing.T) {
	buildFloor := time.Now().Add(-24 * time.Hour)
	later := time.Now().Add(time.Hour).Round(0).UTC()
	earlier := buildFloor.Add(-time.Hour).Round(0).UTC()
	tests := []struct {
		name     string
		content  string // empty: no file
		want     time.Time
		wantWarn bool
	}{
		{name: "no file", want: buildFloor},
		{name: "later than the build", content: later.Format(time.RFC3339Nano), want: later},
		{name: "earlier than the build", content: earlier.Format(time.RFC3339Nano), want: buildFloor},
		{name: "corrupt", content: "not a time", want: buildFloor, wantWarn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testlog.New()
			cfg := testConfig(t, clock.ModeSystem)
			cfg.Floor = buildFloor
			cfg.Log = log
			if tt.content != "" {
				if err := os.WriteFile(cfg.Dir.Join(LastGoodFileName), []byte(tt.content+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := newClock(t, cfg)
			if !c.Floor().Equal(tt.want) {
				t.Errorf("Floor() = %v, want %v", c.Floor(), tt.want)
			}
			if got := len(logs.Lines("level=WARN", "ignoring the last-known-good time")) == 1; got != tt.wantWarn {
				t.Errorf("warned = %v, want %v:\n%s", got, tt.wantWarn, logs)
			}
		})
	}
}

// A last-known-good time later than the clock makes it untrusted, and only
// two servers that agree can take the clock below it.
func TestLastGoodFloor(t *testing.T) {
	setup := func(t *testing.T, mode string, servers ...string) (*Clock, *testlog.Buffer, time.Time, Config) {
		t.Helper()
		log, logs := testlog.New()
		cfg := testConfig(t, mode, servers...)
		cfg.Log = log
		cfg.SystemTime = nil // the real clock
		lastGood := time.Now().Add(time.Hour).Round(0).UTC()
		if err := (lastGoodFile{path: cfg.Dir.Join(LastGoodFileName)}).save(lastGood); err != nil {
			t.Fatal(err)
		}
		c := newClock(t, cfg)
		if !c.Floor().Equal(lastGood) {
			t.Fatalf("Floor() = %v, want the last-known-good time %v", c.Floor(), lastGood)
		}
		return c, logs, lastGood, cfg
	}

	t.Run("mode system", func(t *testing.T) {
		c, _, _, _ := setup(t, clock.ModeSystem)
		if c.Trusted() || c.Status().Trusted {
			t.Error("the real clock, an hour before the last-known-good time, is trusted")
		}
	})

	t.Run("one server is refused", func(t *testing.T) {
		srv := ntptest.Start(t, ntptest.Behaviour{})
		c, _, lastGood, _ := setup(t, clock.ModeAuto, srv.Addr)
		if c.Trusted() {
			t.Fatal("trusted below the last-known-good time")
		}
		err := c.Sync(context.Background())
		if err == nil {
			t.Fatal("one server took the clock below the last-known-good time")
		}
		for _, want := range []string{srv.Addr, "earlier than the last-known-good time"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Sync: %v, want it to mention %q", err, want)
			}
		}
		if c.Status().Synced || c.Trusted() {
			t.Error("synced or trusted after the refusal")
		}
		if !c.Floor().Equal(lastGood) {
			t.Errorf("Floor() = %v after the refusal, want %v", c.Floor(), lastGood)
		}
	})

	t.Run("two servers that agree lower it", func(t *testing.T) {
		a := ntptest.Start(t, ntptest.Behaviour{})
		b := ntptest.Start(t, ntptest.Behaviour{Offset: 200 * time.Millisecond})
		c, logs, _, cfg := setup(t, clock.ModeAuto, a.Addr, b.Addr)
		if err := c.Sync(context.Background()); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if st := c.Status(); !st.Synced || !st.Trusted {
			t.Errorf("Status() = %+v, want synced and trusted", st)
		}
		near(t, "Now()", c.Now(), time.Now(), time.Second)
		// Lowered, then persisted at once as the agreed time, so a restart
		// does not bring the wrong floor back.
		if f := c.Floor(); f.Before(cfg.Floor) || f.After(time.Now().Add(time.Second)) {
			t.Errorf("Floor() = %v, want between the build floor %v and now", f, cfg.Floor)
		}
		saved, err := c.lastGood.load()
		if err != nil || saved.After(time.Now().Add(time.Second)) || saved.Before(time.Now().Add(-time.Minute)) {
			t.Errorf("last-known-good file holds %v (%v), want the agreed time", saved, err)
		}
		if len(logs.Lines("level=ERROR", "earlier than the last-known-good time")) != 1 {
			t.Errorf("lowering the floor was not logged as an error:\n%s", logs)
		}
	})
}

// saveLastGood writes at most every PersistEvery, except the final write.
func TestSaveLastGoodRateLimit(t *testing.T) {
	cfg := testConfig(t, clock.ModeSystem)
	cfg.PersistEvery = time.Hour
	c := newClock(t, cfg)
	for range 5 {
		c.saveLastGood(false)
	}
	if n := writeCount(c); n != 1 {
		t.Errorf("%d writes for five non-final saves within PersistEvery, want 1", n)
	}
	before := time.Now()
	c.saveLastGood(true)
	if n := writeCount(c); n != 2 {
		t.Errorf("%d writes after a final save, want 2", n)
	}
	saved, err := c.lastGood.load()
	if err != nil {
		t.Fatal(err)
	}
	if saved.Before(before) || saved.After(time.Now()) {
		t.Errorf("saved %v, want the time of the final save", saved)
	}
	if !c.Floor().Equal(saved) {
		t.Errorf("Floor() = %v, want it raised to the saved %v", c.Floor(), saved)
	}
}

// Cam flash wears: a running clock writes the last-known-good time at most
// every PersistEvery, and once more when it stops.
func TestPersistFlashWear(t *testing.T) {
	const (
		every   = 50 * time.Millisecond
		runtime = 500 * time.Millisecond
	)
	cfg := testConfig(t, clock.ModeSystem)
	cfg.PersistEvery = every
	c := newClock(t, cfg)
	stop := run(t, c)
	time.Sleep(runtime)
	stop()
	stopped := time.Now()

	n := writeCount(c)
	if limit := int(runtime/every) + 2; n > limit {
		t.Errorf("%d writes in %s with PersistEvery %s, want at most %d", n, runtime, every, limit)
	}
	if n < 2 {
		t.Errorf("%d writes, want at least a periodic one and the final one", n)
	}
	saved, err := c.lastGood.load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if saved.IsZero() || saved.After(stopped) || stopped.Sub(saved) > time.Second {
		t.Errorf("saved %v, want about the time Run stopped (%v)", saved, stopped)
	}
	if !c.Floor().Equal(saved) {
		t.Errorf("Floor() = %v, want it raised to the saved %v", c.Floor(), saved)
	}

	again := newClock(t, Config{Mode: clock.ModeSystem, Floor: cfg.Floor, Dir: cfg.Dir})
	if again.Floor().Before(saved) {
		t.Errorf("a new clock on the same directory has Floor() %v, before the saved %v", again.Floor(), saved)
	}
}

// An untrusted clock never writes the last-known-good time.
func TestPersistNothingWhileUntrusted(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		silent bool // a silent NTP server, for the modes that need one
		local  time.Time
	}{
		{name: "system at 1970", mode: clock.ModeSystem, local: base1970},
		{name: "auto at 1970, no NTP answer", mode: clock.ModeAuto, silent: true, local: base1970},
		{name: "ntp, no NTP answer", mode: clock.ModeNTP, silent: true, local: time.Now()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var servers []string
			var srv *ntptest.Server
			if tt.silent {
				srv = ntptest.Start(t, ntptest.Behaviour{Silent: true})
				servers = append(servers, srv.Addr)
			}
			cfg := testConfig(t, tt.mode, servers...)
			cfg.Timeout = 50 * time.Millisecond
			cfg.PersistEvery = 20 * time.Millisecond
			cfg.SystemTime = newFakeSystem(tt.local).Now
			c := newClock(t, cfg)
			if c.Trusted() {
				t.Fatal("the clock is trusted")
			}
			stop := run(t, c)
			time.Sleep(300 * time.Millisecond)
			stop()
			if srv != nil && srv.Queries() == 0 {
				t.Error("the clock never tried to sync")
			}
			if n := writeCount(c); n != 0 {
				t.Errorf("%d writes of the last-known-good time while untrusted", n)
			}
			if _, err := os.Stat(cfg.Dir.Join(LastGoodFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat %s: %v, want it missing", LastGoodFileName, err)
			}
			if !c.Floor().Equal(cfg.Floor) {
				t.Errorf("Floor() = %v, want the build floor %v", c.Floor(), cfg.Floor)
			}
		})
	}
}

// The floor written at shutdown holds after a restart: a clock that comes
// back earlier than it is not trusted.
func TestFloorSurvivesRestart(t *testing.T) {
	srv := ntptest.Start(t, ntptest.Behaviour{Offset: 2 * time.Minute})
	cfg := testConfig(t, clock.ModeAuto, srv.Addr)
	c := newClock(t, cfg)
	stop := run(t, c)
	waitFor(t, "the first sync", func() bool { return c.Status().Synced })
	stop()
	if n := writeCount(c); n != 1 {
		t.Errorf("%d writes, want the final one only (PersistEvery is %s)", n, DefaultPersistEvery)
	}
	saved, err := c.lastGood.load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	// The saved time is NTP time, not the local clock's.
	near(t, "saved time", saved, time.Now().Add(2*time.Minute), time.Second)

	tests := []struct {
		name    string
		local   time.Time
		trusted bool
	}{
		{"a minute before the saved time", saved.Add(-time.Minute), false},
		{"a minute after the saved time", saved.Add(time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restarted := newClock(t, Config{
				Mode:       clock.ModeAuto,
				Servers:    cfg.Servers,
				Floor:      cfg.Floor,
				Dir:        cfg.Dir,
				SystemTime: newFakeSystem(tt.local).Now,
				SetTime:    cfg.SetTime,
			})
			if !restarted.Floor().Equal(saved) {
				t.Errorf("Floor() after restart = %v, want the saved %v", restarted.Floor(), saved)
			}
			if restarted.Trusted() != tt.trusted {
				t.Errorf("Trusted() = %v, want %v", restarted.Trusted(), tt.trusted)
			}
		})
	}
}
