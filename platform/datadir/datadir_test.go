package datadir_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/datadir"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		rel     string   // path to open, relative to the test's working directory
		created []string // directories Open must create, relative too
	}{
		{name: "missing single", rel: "data", created: []string{"data"}},
		{name: "missing nested", rel: "a/b/c", created: []string{"a", "a/b", "a/b/c"}},
		{name: "existing", rel: "."},
		{name: "unclean path", rel: "x/../y//z/", created: []string{"y", "y/z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			t.Chdir(base)

			d, err := datadir.Open(tt.rel)
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.rel, err)
			}
			want := filepath.Join(base, tt.rel)
			if d.Path() != want {
				t.Errorf("Path() = %q, want %q", d.Path(), want)
			}
			if !filepath.IsAbs(d.Path()) {
				t.Errorf("Path() = %q is not absolute", d.Path())
			}
			if got, want := d.Join("secret.bin"), filepath.Join(want, "secret.bin"); got != want {
				t.Errorf("Join = %q, want %q", got, want)
			}
			for _, c := range tt.created {
				info, err := os.Stat(filepath.Join(base, c))
				if err != nil {
					t.Fatalf("stat %s: %v", c, err)
				}
				if !info.IsDir() || info.Mode().Perm() != 0o700 {
					t.Errorf("%s: mode %v, want a directory with 0700", c, info.Mode())
				}
			}
			// The data directory is the leaf: empty, so the write probe
			// must not be left behind.
			entries, err := os.ReadDir(d.Path())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("unexpected entry %s left in the data directory", e.Name())
			}
		})
	}
}

func TestOpenKeepsExistingMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := datadir.Open(dir); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o755 {
		t.Errorf("mode of an existing directory changed to %v", info.Mode().Perm())
	}
}

// TestOpenRemovesLeftovers: what a kill -9 in the middle of a write or of
// Open itself leaves is removed at the next Open; the files, the lock file,
// files moved aside and a write in progress (flocked) stay. Regression: the
// crash harness (e2e TestCrash) found .ack.json.tmp-* and .secret.bin.tmp-*
// files surviving every later start.
func TestOpenRemovesLeftovers(t *testing.T) {
	tests := []struct {
		name  string
		files []string // created before Open
		lock  string   // flocked during Open, as by a live writer
		want  []string // left after Open
	}{
		{
			name:  "interrupted writes",
			files: []string{"ack.json", ".ack.json.tmp-4046123396", ".secret.bin.tmp-410771747", ".clients.json.tmp-1"},
			want:  []string{"ack.json"},
		},
		{
			name:  "interrupted probe",
			files: []string{"secret.bin", ".probe-123456"},
			want:  []string{"secret.bin"},
		},
		{
			name:  "write in progress in another process",
			files: []string{"ack.json"},
			lock:  ".ack.json.tmp-77",
			want:  []string{".ack.json.tmp-77", "ack.json"},
		},
		{
			name:  "known names",
			files: []string{".lock", "secret.bin", "secret.bin.bad-1700000000", "password.hash", "clock.lastgood"},
			want:  []string{".lock", "clock.lastgood", "password.hash", "secret.bin", "secret.bin.bad-1700000000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.lock != "" {
				f, err := os.OpenFile(filepath.Join(dir, tt.lock), os.O_CREATE|os.O_RDWR, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := datadir.Open(dir); err != nil {
				t.Fatalf("Open: %v", err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("left %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, base string) string // returns the path to open
		wantText string                                 // text the error must hold, besides the path
	}{
		{
			name:     "empty path",
			setup:    func(t *testing.T, base string) string { return "" },
			wantText: "empty path",
		},
		{
			name: "parent is a regular file",
			setup: func(t *testing.T, base string) string {
				if err := os.WriteFile(filepath.Join(base, "plain"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(base, "plain", "camd")
			},
		},
		{
			name: "path is a regular file",
			setup: func(t *testing.T, base string) string {
				p := filepath.Join(base, "plain")
				if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
		},
		{
			// Not writable even by root, unlike a directory with mode 0500.
			name:  "under /proc",
			setup: func(t *testing.T, base string) string { return "/proc/camd-test" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			_, err := datadir.Open(path)
			if err == nil {
				t.Fatalf("Open(%q) succeeded, want an error", path)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path %q", err, path)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestOpenReadOnly(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permission bits do not stop root from writing, so a read-only directory cannot be made here (the /proc case in TestOpenErrors covers an unwritable path)")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	_, err := datadir.Open(dir)
	if err == nil {
		t.Fatal("Open of a read-only directory succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("error %q should name %s and say it is not writable", err, dir)
	}
}

// tryLock attempts a non-blocking exclusive flock on the lock file through a
// descriptor of its own, as another process would, and releases it at once.
func tryLock(t *testing.T, d datadir.Dir) error {
	t.Helper()
	f, err := os.OpenFile(d.Join(".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// waitForWaiter returns once the kernel shows a blocked flock request on
// path in /proc/locks (lines starting "->"). It is a synchronisation point,
// not a timing assertion: the deadline only guards against a hang.
func waitForWaiter(t *testing.T, path string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	needle := fmt.Sprintf(":%d ", st.Ino)
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Skipf("cannot see blocked locks: %v", err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "->") && strings.Contains(line, "FLOCK") && strings.Contains(line, needle) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("second Lock never blocked on the lock file")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLockExcludesOthers(t *testing.T) {
	d, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d.Lock()
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	info, err := os.Stat(d.Join(".lock"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", info.Mode().Perm())
	}
	if err := tryLock(t, d); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("another descriptor locked while Lock was held: err = %v, want EWOULDBLOCK", err)
	}
	unlock()
	if err := tryLock(t, d); err != nil {
		t.Fatalf("lock still held after unlock: %v", err)
	}
	// A second round works on the existing lock file.
	unlock, err = d.Lock()
	if err != nil {
		t.Fatalf("Lock again: %v", err)
	}
	unlock()
}

func TestLockSerialises(t *testing.T) {
	d, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlockA, err := d.Lock()
	if err != nil {
		t.Fatal(err)
	}

	released := make(chan struct{}) // closed just before A unlocks
	acquired := make(chan error, 1) // B reports once it holds the lock
	unlockB := make(chan func(), 1)
	go func() {
		unlock, err := d.Lock()
		if err != nil {
			acquired <- err
			return
		}
		select {
		case <-released:
			acquired <- nil
		default:
			acquired <- errors.New("B acquired the lock while A still held it")
		}
		unlockB <- unlock
	}()

	waitForWaiter(t, d.Join(".lock"))
	select {
	case err := <-acquired:
		t.Fatalf("B returned from Lock while A held it (err %v)", err)
	default:
	}
	close(released)
	unlockA()

	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B never acquired the lock after A released it")
	}
	unlock := <-unlockB
	if err := tryLock(t, d); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("B does not hold the lock: err = %v", err)
	}
	unlock()
	if err := tryLock(t, d); err != nil {
		t.Errorf("lock still held after B unlocked: %v", err)
	}
}

func TestLockErrors(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, d datadir.Dir)
	}{
		{
			name: "directory removed",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.RemoveAll(d.Path()); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "lock file is a directory",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.Mkdir(d.Join(".lock"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := datadir.Open(filepath.Join(t.TempDir(), "data"))
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, d)
			unlock, err := d.Lock()
			if err == nil {
				unlock()
				t.Fatal("Lock succeeded, want an error")
			}
			if unlock != nil {
				t.Error("Lock returned an unlock func with an error")
			}
			if !strings.Contains(err.Error(), d.Join(".lock")) {
				t.Errorf("error %q does not name the lock file", err)
			}
		})
	}
}

// TestAdopt: the old file at the top moves into the module's directory;
// when both exist, the module's is kept, the old one left, and a warning
// names both.
func TestAdopt(t *testing.T) {
	tests := []struct {
		name     string
		old, cur string // contents at the top and in the module's directory; "" for none
		want     string // in the module's directory after
		oldLeft  bool
		warn     bool
	}{
		{name: "neither"},
		{name: "old only", old: "old", want: "old"},
		{name: "module's only", cur: "cur", want: "cur"},
		{name: "both", old: "old", cur: "cur", want: "cur", oldLeft: true, warn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, err := datadir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			sub, err := top.Sub("ack")
			if err != nil {
				t.Fatal(err)
			}
			if tt.old != "" {
				mustWrite(t, top.Join("ack.json"), tt.old)
			}
			if tt.cur != "" {
				mustWrite(t, sub.Join("ack.json"), tt.cur)
			}
			log, logs := testlog.New()
			if err := sub.Adopt(top, "ack.json", log); err != nil {
				t.Fatalf("Adopt: %v", err)
			}
			if b, err := os.ReadFile(sub.Join("ack.json")); string(b) != tt.want || (tt.want == "" && !os.IsNotExist(err)) {
				t.Errorf("module's file %q (%v), want %q", b, err, tt.want)
			}
			if _, err := os.Stat(top.Join("ack.json")); (err == nil) != tt.oldLeft {
				t.Errorf("old file left: %v, want %v", err == nil, tt.oldLeft)
			}
			warned := logs.Lines("level=WARN", top.Join("ack.json"), sub.Join("ack.json"))
			if (len(warned) == 1) != tt.warn {
				t.Errorf("warnings naming both files %q, want one: %v; log %q", warned, tt.warn, logs.String())
			}
		})
	}
}

// TestAdoptConcurrent: camds starting together on one data directory all
// adopt the old file: one moves it, and the others find it moved, rather
// than fail on the source that vanished under them.
func TestAdoptConcurrent(t *testing.T) {
	for round := range 50 {
		top, err := datadir.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sub, err := top.Sub("ack")
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, top.Join("ack.json"), "old")
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for range cap(errs) {
			wg.Go(func() { errs <- sub.Adopt(top, "ack.json", slog.New(slog.DiscardHandler)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: Adopt: %v", round, err)
			}
		}
		if b, err := os.ReadFile(sub.Join("ack.json")); err != nil || string(b) != "old" {
			t.Fatalf("round %d: adopted file %q, %v", round, b, err)
		}
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
