package atomicfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"camd/platform/atomicfile"
)

// names returns the sorted entry names of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// noTemps fails when dir holds a leftover temporary file.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") {
			t.Errorf("temporary file %s left behind in %s", n, dir)
		}
	}
}

func mustWrite(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	// os.WriteFile is subject to the umask; force the mode the test asked for.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func checkFile(t *testing.T, path string, want []byte, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if string(got) != string(want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Mode().IsRegular() {
		t.Errorf("%s is %v, want a regular file", path, info.Mode())
	}
	if info.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), perm)
	}
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte      // nil: no file before
		oldPerm  fs.FileMode // mode of the existing file
		data     []byte
		perm     fs.FileMode
	}{
		{name: "create 0600", data: []byte("hello"), perm: 0o600},
		{name: "create empty", data: []byte{}, perm: 0o600},
		// 0666 would come out 0644 under the usual umask 022 if the mode
		// were left to open(2).
		{name: "create 0666 ignores umask", data: []byte("x"), perm: 0o666},
		{name: "replace 0644 with 0600", existing: []byte("old content that is longer"), oldPerm: 0o644, data: []byte("new"), perm: 0o600},
		{name: "replace 0600 with 0600", existing: []byte("old"), oldPerm: 0o600, data: []byte("newer content"), perm: 0o600},
		{name: "replace 0777 with 0600", existing: []byte("old"), oldPerm: 0o777, data: []byte("n"), perm: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file.json")
			if tt.existing != nil {
				mustWrite(t, path, tt.existing, tt.oldPerm)
			}
			if err := atomicfile.WriteFile(path, tt.data, tt.perm); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			checkFile(t, path, tt.data, tt.perm)
			if got := names(t, dir); !slices.Equal(got, []string{"file.json"}) {
				t.Errorf("dir holds %q, want only file.json", got)
			}
		})
	}
}

func TestWriteFileErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the target path
	}{
		{
			name: "missing dir",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "missing", "file.json")
			},
		},
		{
			name: "parent is a regular file",
			setup: func(t *testing.T, dir string) string {
				mustWrite(t, filepath.Join(dir, "plain"), []byte("x"), 0o600)
				return filepath.Join(dir, "plain", "file.json")
			},
		},
		{
			// The temp file is written, then rename(2) fails: the temp
			// must still be removed.
			name: "target is a directory",
			setup: func(t *testing.T, dir string) string {
				target := filepath.Join(dir, "target")
				if err := os.Mkdir(target, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(target, "inner"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return target
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			before := names(t, dir)
			err := atomicfile.WriteFile(path, []byte("data"), 0o600)
			if err == nil {
				t.Fatal("WriteFile succeeded, want an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if got := names(t, dir); !slices.Equal(got, before) {
				t.Errorf("dir changed from %q to %q", before, got)
			}
			noTemps(t, dir)
		})
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: absent
		data     []byte
		wantErr  error  // nil: success
		want     []byte // content afterwards
	}{
		{name: "absent", data: []byte("new"), want: []byte("new")},
		{name: "present", existing: []byte("old"), data: []byte("new"), wantErr: fs.ErrExist, want: []byte("old")},
		{name: "present and empty", existing: []byte{}, data: []byte("new"), wantErr: fs.ErrExist, want: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "secret.bin")
			if tt.existing != nil {
				mustWrite(t, path, tt.existing, 0o644)
			}
			err := atomicfile.Create(path, tt.data, 0o600)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				checkFile(t, path, tt.want, 0o600)
			} else {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Create error = %v, want %v", err, tt.wantErr)
				}
				// Untouched: same content and the old mode.
				checkFile(t, path, tt.want, 0o644)
			}
			if got := names(t, dir); !slices.Equal(got, []string{"secret.bin"}) {
				t.Errorf("dir holds %q, want only secret.bin", got)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
	}{
		{
			name:  "missing dir",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "missing", "f") },
		},
		{
			name: "parent is a regular file",
			setup: func(t *testing.T, dir string) string {
				mustWrite(t, filepath.Join(dir, "plain"), []byte("x"), 0o600)
				return filepath.Join(dir, "plain", "f")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			before := names(t, dir)
			err := atomicfile.Create(path, []byte("data"), 0o600)
			if err == nil {
				t.Fatal("Create succeeded, want an error")
			}
			if errors.Is(err, fs.ErrExist) {
				t.Errorf("error %v matches fs.ErrExist; callers would take it for a lost race", err)
			}
			if got := names(t, dir); !slices.Equal(got, before) {
				t.Errorf("dir changed from %q to %q", before, got)
			}
			noTemps(t, dir)
		})
	}
}

func TestCreateConcurrent(t *testing.T) {
	const n = 16
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.bin")

	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = atomicfile.Create(path, fmt.Appendf(nil, "writer %02d", i), 0o600)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer succeeded")
	}
	checkFile(t, path, fmt.Appendf(nil, "writer %02d", winner), 0o600)
	if got := names(t, dir); !slices.Equal(got, []string{"secret.bin"}) {
		t.Errorf("dir holds %q, want only secret.bin", got)
	}
}

func TestMoveAside(t *testing.T) {
	now := time.Unix(1700000000, 123)
	base := "ack.json.bad-1700000000"
	tests := []struct {
		name     string
		occupied []string // names that exist already
		want     string
	}{
		{name: "free", want: base},
		{name: "taken once", occupied: []string{base}, want: base + ".1"},
		{name: "taken twice", occupied: []string{base, base + ".1"}, want: base + ".2"},
		{name: "gap in counters", occupied: []string{base, base + ".2"}, want: base + ".1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ack.json")
			mustWrite(t, path, []byte("damaged"), 0o600)
			for _, o := range tt.occupied {
				mustWrite(t, filepath.Join(dir, o), []byte("earlier "+o), 0o600)
			}

			got, err := atomicfile.MoveAside(path, now)
			if err != nil {
				t.Fatalf("MoveAside: %v", err)
			}
			want := filepath.Join(dir, tt.want)
			if got != want {
				t.Errorf("MoveAside = %s, want %s", got, want)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still exists (err %v)", path, err)
			}
			checkFile(t, want, []byte("damaged"), 0o600)
			for _, o := range tt.occupied {
				checkFile(t, filepath.Join(dir, o), []byte("earlier "+o), 0o600)
			}
		})
	}
}

func TestMoveAsideErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
	}{
		{
			name:  "missing file",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "ack.json") },
		},
		{
			// The .bad-<unix> name is longer than NAME_MAX, so Lstat fails
			// with ENAMETOOLONG for every counter: MoveAside used to spin
			// forever here.
			name: "name too long for a suffix",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, strings.Repeat("a", 250))
				mustWrite(t, p, []byte("x"), 0o600)
				return p
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			before := names(t, dir)
			done := make(chan error, 1)
			go func() {
				_, err := atomicfile.MoveAside(path, time.Unix(1700000000, 0))
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				// A guard against a hang, not a timing assertion.
				t.Fatal("MoveAside did not return")
			}
			if err == nil {
				t.Fatal("MoveAside succeeded, want an error")
			}
			if got := names(t, dir); !slices.Equal(got, before) {
				t.Errorf("dir changed from %q to %q", before, got)
			}
		})
	}
}

func TestSyncDir(t *testing.T) {
	tests := []struct {
		name    string
		path    func(dir string) string
		wantErr bool
	}{
		{name: "existing dir", path: func(dir string) string { return dir }},
		{name: "missing dir", path: func(dir string) string { return filepath.Join(dir, "nope") }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := atomicfile.SyncDir(tt.path(t.TempDir()))
			if (err != nil) != tt.wantErr {
				t.Errorf("SyncDir error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestIsTemp(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{".secret.bin.tmp-410771747", true},
		{".ack.json.tmp-1", true},
		{".a.tmp-0", true},
		{"secret.bin", false},
		{".lock", false},
		{"secret.bin.bad-1700000000", false},
		{".secret.bin.tmp-", false},       // no suffix
		{".secret.bin.tmp-12a", false},    // not os.CreateTemp's digits
		{"secret.bin.tmp-123", false},     // not hidden: not ours
		{".tmp-123", false},               // no base name
		{".probe-123", false},             // datadir's probe, not a write
		{".x.tmp-1.tmp-2", true},          // the last infix counts
		{".clients.json.tmp-99x", false},  // trailing junk
		{".clients.json.tmp-99/", false},  // not a base name
		{".clients.json.tmp-٣", false},    // non-ASCII digit
		{".clients.json.TMP-123", false},  // case matters
		{".secret.bin.tmp-123 ", false},   // trailing space
		{".secret.bin.tmp-0123456", true}, // leading zeros are digits
	}
	for _, tt := range tests {
		if got := atomicfile.IsTemp(tt.name); got != tt.want {
			t.Errorf("IsTemp(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// lockedTemp opens name and holds a flock on it, as a write in progress
// does, until the test ends.
func lockedTemp(t *testing.T, name string) {
	t.Helper()
	mustWrite(t, name, []byte("in progress"), 0o600)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveTemps: what a killed writer leaves is removed; writes in
// progress (flocked) and every other name stay. Regression: kill -9 during
// a write left .<name>.tmp-* files in the data directory for good.
func TestRemoveTemps(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		removed []string
		left    []string
	}{
		{
			name: "killed before the rename",
			setup: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, "ack.json"), []byte("old"), 0o600)
				mustWrite(t, filepath.Join(dir, ".ack.json.tmp-123"), []byte("new"), 0o600)
			},
			removed: []string{".ack.json.tmp-123"},
			left:    []string{"ack.json"},
		},
		{
			// Create links the temp into place, then removes the temp
			// name: killed in between, both names are the same file.
			name: "killed between link and remove",
			setup: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, "secret.bin"), []byte("key"), 0o600)
				if err := os.Link(filepath.Join(dir, "secret.bin"), filepath.Join(dir, ".secret.bin.tmp-7")); err != nil {
					t.Fatal(err)
				}
			},
			removed: []string{".secret.bin.tmp-7"},
			left:    []string{"secret.bin"},
		},
		{
			name: "empty temp, killed before the write",
			setup: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, ".clients.json.tmp-1"), nil, 0o600)
				mustWrite(t, filepath.Join(dir, ".password.hash.tmp-2"), nil, 0o600)
			},
			removed: []string{".clients.json.tmp-1", ".password.hash.tmp-2"},
		},
		{
			name: "write in progress",
			setup: func(t *testing.T, dir string) {
				lockedTemp(t, filepath.Join(dir, ".ack.json.tmp-5"))
				mustWrite(t, filepath.Join(dir, ".ack.json.tmp-6"), []byte("dead"), 0o600)
			},
			removed: []string{".ack.json.tmp-6"},
			left:    []string{".ack.json.tmp-5"},
		},
		{
			name: "other names",
			setup: func(t *testing.T, dir string) {
				for _, n := range []string{".lock", "secret.bin.bad-1700000000", ".secret.bin.tmp-x", "notes.tmp-1"} {
					mustWrite(t, filepath.Join(dir, n), []byte("x"), 0o600)
				}
				if err := os.Mkdir(filepath.Join(dir, ".dir.tmp-1"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			left: []string{".dir.tmp-1", ".lock", ".secret.bin.tmp-x", "notes.tmp-1", "secret.bin.bad-1700000000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			removed, err := atomicfile.RemoveTemps(dir)
			if err != nil {
				t.Fatalf("RemoveTemps: %v", err)
			}
			slices.Sort(removed)
			if !slices.Equal(removed, tt.removed) {
				t.Errorf("removed %q, want %q", removed, tt.removed)
			}
			if got := names(t, dir); !slices.Equal(got, tt.left) {
				t.Errorf("dir holds %q, want %q", got, tt.left)
			}
		})
	}
	if _, err := atomicfile.RemoveTemps(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveTemps on a missing dir: %v, want fs.ErrNotExist", err)
	}
}

// TestRemoveTempsBesideWriters: a cleanup running while others write never
// breaks a write. It may take a temp file between its creation and its
// lock; the writer must then notice and start over.
func TestRemoveTempsBesideWriters(t *testing.T) {
	dir := t.TempDir()
	deadline := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				var err error
				if w == 0 {
					err = atomicfile.Create(filepath.Join(dir, fmt.Sprintf("created-%d", i)), []byte("c"), 0o600)
				} else {
					err = atomicfile.WriteFile(filepath.Join(dir, "ack.json"), fmt.Appendf(nil, "%d-%d", w, i), 0o600)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	cleanups := 0
	wg.Go(func() {
		for time.Now().Before(deadline) {
			if _, err := atomicfile.RemoveTemps(dir); err != nil {
				errs <- err
				return
			}
			cleanups++
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("beside RemoveTemps: %v", err)
	}
	noTemps(t, dir)
	t.Logf("%d cleanups beside the writers", cleanups)
}

// crashWriterEnv makes the test binary a writer that loops until killed.
const crashWriterEnv = "ATOMICFILE_TEST_CRASH_WRITER"

// TestRemoveTempsAfterKill: a process killed with SIGKILL while writing
// leaves temp files only RemoveTemps clears, and never a torn file.
func TestRemoveTempsAfterKill(t *testing.T) {
	if dir := os.Getenv(crashWriterEnv); dir != "" {
		for i := 0; ; i++ {
			if err := atomicfile.WriteFile(filepath.Join(dir, "ack.json"), fmt.Appendf(nil, "ack %08d", i), 0o600); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	dir := t.TempDir()
	left := 0
	for round := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRemoveTempsAfterKill$")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+round) * time.Millisecond)
		cmd.Process.Kill()
		if err := cmd.Wait(); err == nil {
			t.Fatal("the writer exited by itself")
		}
		removed, err := atomicfile.RemoveTemps(dir)
		if err != nil {
			t.Fatalf("round %d: RemoveTemps: %v", round, err)
		}
		left += len(removed)
		noTemps(t, dir)
		if got := names(t, dir); len(got) > 1 {
			t.Fatalf("round %d: dir holds %q", round, got)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "ack.json")); err == nil && !regexp.MustCompile(`^ack \d{8}$`).Match(b) {
			t.Fatalf("round %d: torn ack.json %q", round, b)
		}
	}
	t.Logf("%d of 20 kills left a temp file", left)
}
