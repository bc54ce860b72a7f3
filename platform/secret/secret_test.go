package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/datadir"
	"camd/platform/secret"
)

var fixedNow = time.Unix(1700000000, 0)

func now() time.Time { return fixedNow }

// movedName is where a bad secret.bin goes at fixedNow.
const movedName = "secret.bin.bad-1700000000"

func newDir(t *testing.T) datadir.Dir {
	t.Helper()
	d, err := datadir.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// noKeyInLog fails if the log holds key in any usual encoding.
func noKeyInLog(t *testing.T, log string, key []byte) {
	t.Helper()
	for name, enc := range map[string]string{
		"raw":        string(key),
		"hex":        hex.EncodeToString(key),
		"HEX":        strings.ToUpper(hex.EncodeToString(key)),
		"base64":     base64.StdEncoding.EncodeToString(key),
		"base64 raw": base64.RawStdEncoding.EncodeToString(key),
		"base64url":  base64.RawURLEncoding.EncodeToString(key),
		"%v":         fmt.Sprint(key),
		"%q":         fmt.Sprintf("%q", key),
	} {
		if enc != "" && strings.Contains(log, enc) {
			t.Errorf("log contains the secret (%s encoding):\n%s", name, log)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func checkSecretFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %x, want %x", path, got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, info.Mode().Perm())
	}
}

func entryNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != ".lock" {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

func TestLoadOrCreateNew(t *testing.T) {
	d := newDir(t)
	log, buf := testlog.New()

	key, err := secret.LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	if len(key) != secret.Size {
		t.Fatalf("key is %d bytes, want %d", len(key), secret.Size)
	}
	if bytes.Equal(key, make([]byte, secret.Size)) {
		t.Fatal("key is all zero")
	}
	checkSecretFile(t, d.Join(secret.FileName), key)
	if got := entryNames(t, d.Path()); !slices.Equal(got, []string{secret.FileName}) {
		t.Errorf("data dir holds %q, want only %s", got, secret.FileName)
	}
	if info := testlog.AtLevel(buf.String(), "INFO"); len(info) != 1 || !strings.Contains(info[0], "created signing secret") {
		t.Errorf("want one INFO line about the new secret, log:\n%s", buf)
	}

	again, err := secret.LoadOrCreate(d, log, now)
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if !bytes.Equal(again, key) {
		t.Errorf("second call returned %x, want the first key %x", again, key)
	}
	if info := testlog.AtLevel(buf.String(), "INFO"); len(info) != 1 {
		t.Errorf("second call logged a new secret again:\n%s", buf)
	}
	if w := testlog.AtLevel(buf.String(), "WARN"); len(w) != 0 {
		t.Errorf("unexpected warnings:\n%s", buf)
	}
	noKeyInLog(t, buf.String(), key)
}

func TestLoadOrCreateBadSize(t *testing.T) {
	for _, size := range []int{0, 1, 31, 33, 4096} {
		t.Run(strconv.Itoa(size)+" bytes", func(t *testing.T) {
			d := newDir(t)
			log, buf := testlog.New()
			bad := pattern(size)
			writeFile(t, d.Join(secret.FileName), bad, 0o600)

			key, err := secret.LoadOrCreate(d, log, now)
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if len(key) != secret.Size {
				t.Fatalf("key is %d bytes, want %d", len(key), secret.Size)
			}
			if bytes.Equal(key, bad[:min(size, secret.Size)]) {
				t.Error("new key equals the bad file's bytes")
			}
			checkSecretFile(t, d.Join(secret.FileName), key)

			moved, err := os.ReadFile(d.Join(movedName))
			if err != nil {
				t.Fatalf("bad file not moved aside: %v", err)
			}
			if !bytes.Equal(moved, bad) {
				t.Errorf("moved file holds %d bytes, want the original %d bytes", len(moved), len(bad))
			}
			if got, want := entryNames(t, d.Path()), []string{secret.FileName, movedName}; !slices.Equal(got, want) {
				t.Errorf("data dir holds %q, want %q", got, want)
			}

			errs := testlog.AtLevel(buf.String(), "ERROR")
			if len(errs) != 1 {
				t.Fatalf("want one ERROR line, log:\n%s", buf)
			}
			if !strings.Contains(errs[0], "moved_to="+d.Join(movedName)) {
				t.Errorf("ERROR line does not say where the file went: %s", errs[0])
			}
			noKeyInLog(t, buf.String(), key)

			// The new secret is now the one kept.
			again, err := secret.LoadOrCreate(d, log, now)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, key) {
				t.Error("the replacement secret did not persist")
			}
			if n := len(testlog.AtLevel(buf.String(), "ERROR")); n != 1 {
				t.Errorf("second call logged %d ERROR lines in all, want still 1", n)
			}
		})
	}
}

func TestLoadOrCreateBadTwiceInOneSecond(t *testing.T) {
	d := newDir(t)
	log, _ := testlog.New()
	writeFile(t, d.Join(secret.FileName), []byte("first"), 0o600)
	writeFile(t, d.Join(movedName), []byte("earlier"), 0o600)

	if _, err := secret.LoadOrCreate(d, log, now); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{movedName: "earlier", movedName + ".1": "first"} {
		got, err := os.ReadFile(d.Join(name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestLoadOrCreatePermissions(t *testing.T) {
	tests := []struct {
		perm     fs.FileMode
		wantPerm fs.FileMode
		warn     bool
	}{
		{perm: 0o600, wantPerm: 0o600},
		{perm: 0o400, wantPerm: 0o400},
		{perm: 0o644, wantPerm: 0o600, warn: true},
		{perm: 0o640, wantPerm: 0o600, warn: true},
		{perm: 0o604, wantPerm: 0o600, warn: true},
		{perm: 0o666, wantPerm: 0o600, warn: true},
	}
	for _, tt := range tests {
		t.Run(tt.perm.String(), func(t *testing.T) {
			d := newDir(t)
			log, buf := testlog.New()
			want := pattern(secret.Size)
			path := d.Join(secret.FileName)
			writeFile(t, path, want, tt.perm)

			key, err := secret.LoadOrCreate(d, log, now)
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if !bytes.Equal(key, want) {
				t.Errorf("key = %x, want the file's %x", key, want)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != tt.wantPerm {
				t.Errorf("mode after load = %v, want %v", info.Mode().Perm(), tt.wantPerm)
			}
			warns := testlog.AtLevel(buf.String(), "WARN")
			if tt.warn {
				if len(warns) != 1 || !strings.Contains(warns[0], "was="+tt.perm.String()) {
					t.Errorf("want one WARN line naming the old mode %v, log:\n%s", tt.perm, buf)
				}
			} else if len(warns) != 0 {
				t.Errorf("unexpected WARN:\n%s", buf)
			}
			if e := testlog.AtLevel(buf.String(), "ERROR"); len(e) != 0 {
				t.Errorf("unexpected ERROR:\n%s", buf)
			}
			if _, err := os.Stat(d.Join(movedName)); !errors.Is(err, fs.ErrNotExist) {
				t.Error("a good secret was moved aside")
			}
			noKeyInLog(t, buf.String(), key)
		})
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	const n = 8
	base := filepath.Join(t.TempDir(), "data")
	log, buf := testlog.New()

	keys := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			// Each caller opens the directory itself, as separate
			// processes would.
			d, err := datadir.Open(base)
			if err != nil {
				errs[i] = err
				return
			}
			keys[i], errs[i] = secret.LoadOrCreate(d, log, now)
		})
	}
	close(start)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("caller %d got %x, caller 0 got %x", i, keys[i], keys[0])
		}
	}
	checkSecretFile(t, filepath.Join(base, secret.FileName), keys[0])
	if c := strings.Count(buf.String(), "created signing secret"); c != 1 {
		t.Errorf("secret created %d times, want once; log:\n%s", c, buf)
	}
}

func TestLoadOrCreateErrors(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, d datadir.Dir)
	}{
		{
			name: "secret.bin is a directory",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.Mkdir(d.Join(secret.FileName), 0o700); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "data directory removed",
			spoil: func(t *testing.T, d datadir.Dir) {
				if err := os.RemoveAll(d.Path()); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			tt.spoil(t, d)
			log, _ := testlog.New()
			key, err := secret.LoadOrCreate(d, log, now)
			if err == nil {
				t.Fatalf("LoadOrCreate succeeded with key %x, want an error", key)
			}
			if key != nil {
				t.Errorf("key %x returned with an error", key)
			}
		})
	}
}

func TestLoadExternal(t *testing.T) {
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		data    []byte // nil: no file
		perm    fs.FileMode
		isDir   bool
		wantErr error // nil: success; errAny: any error
		warn    bool
	}{
		{name: "32 bytes 0600", data: pattern(32), perm: 0o600},
		{name: "32 bytes 0400", data: pattern(32), perm: 0o400},
		{name: "32 bytes 0644 warns", data: pattern(32), perm: 0o644, warn: true},
		{name: "32 bytes 0660 warns", data: pattern(32), perm: 0o660, warn: true},
		{name: "0 bytes", data: []byte{}, perm: 0o600, wantErr: secret.ErrBadSize},
		{name: "31 bytes", data: pattern(31), perm: 0o600, wantErr: secret.ErrBadSize},
		{name: "33 bytes", data: pattern(33), perm: 0o600, wantErr: secret.ErrBadSize},
		{name: "4096 bytes", data: pattern(4096), perm: 0o600, wantErr: secret.ErrBadSize},
		{name: "missing", wantErr: fs.ErrNotExist},
		{name: "directory", isDir: true, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "external.key")
			switch {
			case tt.isDir:
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			case tt.data != nil:
				writeFile(t, path, tt.data, tt.perm)
				if err := os.Chtimes(path, old, old); err != nil {
					t.Fatal(err)
				}
			}
			log, buf := testlog.New()

			key, err := secret.LoadExternal(path, log)
			switch {
			case tt.wantErr == nil:
				if err != nil {
					t.Fatalf("LoadExternal: %v", err)
				}
				if !bytes.Equal(key, tt.data) {
					t.Errorf("key = %x, want %x", key, tt.data)
				}
			case tt.wantErr == errAny:
				if err == nil {
					t.Fatalf("LoadExternal succeeded with %x, want an error", key)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("LoadExternal error = %v, want %v", err, tt.wantErr)
				}
				if key != nil {
					t.Errorf("key %x returned with an error", key)
				}
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}

			warns := testlog.AtLevel(buf.String(), "WARN")
			if tt.warn != (len(warns) == 1) || len(warns) > 1 {
				t.Errorf("warn = %v, log:\n%s", tt.warn, buf)
			}
			if tt.warn && len(warns) == 1 && !strings.Contains(warns[0], "path="+path) {
				t.Errorf("warning does not name the file: %s", warns[0])
			}

			// Never written, moved or re-moded.
			if tt.data != nil {
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("external file gone: %v", err)
				}
				if !bytes.Equal(got, tt.data) {
					t.Error("external file content changed")
				}
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != tt.perm {
					t.Errorf("mode changed from %v to %v", tt.perm, info.Mode().Perm())
				}
				if !info.ModTime().Equal(old) {
					t.Errorf("mtime changed from %v to %v", old, info.ModTime())
				}
				names := entryNames(t, dir)
				if !slices.Equal(names, []string{"external.key"}) {
					t.Errorf("dir holds %q, want only external.key", names)
				}
			}
			if key != nil {
				noKeyInLog(t, buf.String(), key)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestLoadOrCreateConcurrentRepair starts 8 callers on a bad secret at once:
// without the directory lock, one could move aside the good secret another
// has just made, and the two would end up with different keys.
func TestLoadOrCreateConcurrentRepair(t *testing.T) {
	const n, rounds = 8, 20
	for round := range rounds {
		base := filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(base, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(base, secret.FileName), pattern(5), 0o600)
		log, buf := testlog.New()

		// Opened up front, so that the callers reach the secret together.
		dirs := make([]datadir.Dir, n)
		for i := range dirs {
			d, err := datadir.Open(base)
			if err != nil {
				t.Fatal(err)
			}
			dirs[i] = d
		}
		keys := make([][]byte, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				keys[i], errs[i] = secret.LoadOrCreate(dirs[i], log, now)
			})
		}
		close(start)
		wg.Wait()

		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: caller %d got %x, caller 0 got %x", round, i, keys[i], keys[0])
			}
		}
		checkSecretFile(t, filepath.Join(base, secret.FileName), keys[0])
		if got, want := entryNames(t, base), []string{secret.FileName, movedName}; !slices.Equal(got, want) {
			t.Fatalf("round %d: data dir holds %q, want %q (one file moved aside)", round, got, want)
		}
		if e := testlog.AtLevel(buf.String(), "ERROR"); len(e) != 1 {
			t.Fatalf("round %d: %d ERROR lines, want 1:\n%s", round, len(e), buf)
		}
	}
}

// TestFingerprint: a short, stable name that tells secrets apart and shows
// none of the key's bytes.
func TestFingerprint(t *testing.T) {
	a, b := bytes.Repeat([]byte{0xab}, secret.Size), bytes.Repeat([]byte{0xac}, secret.Size)
	tests := []struct {
		name string
		x, y []byte
		same bool
	}{
		{"same key", a, bytes.Clone(a), true},
		{"one byte apart", a, append(bytes.Clone(a[:secret.Size-1]), 0xac), false},
		{"other key", a, b, false},
	}
	for _, tt := range tests {
		fx, fy := secret.Fingerprint(tt.x), secret.Fingerprint(tt.y)
		if (fx == fy) != tt.same {
			t.Errorf("%s: %s and %s, want same=%v", tt.name, fx, fy, tt.same)
		}
		if len(fx) != 16 || strings.Trim(fx, "0123456789abcdef") != "" {
			t.Errorf("%s: fingerprint %q, want 16 lower-case hex digits", tt.name, fx)
		}
		if strings.Contains(hex.EncodeToString(tt.x), fx) {
			t.Errorf("%s: fingerprint %q is part of the key", tt.name, fx)
		}
	}
}
