package atomicfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
