package secret_test

// A fuzz target for the secret file loaders given arbitrary file contents.
// `go test` replays the seeds below and testdata/fuzz; the long run is
//
//	go test ./platform/secret -run '^$' -fuzz '^FuzzSecretFile$' -fuzztime 10m -parallel 1

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"camd/platform/datadir"
	"camd/platform/secret"
)

// FuzzSecretFile writes arbitrary contents, with arbitrary group and other
// permission bits, as the secret file and loads it both ways:
//
//   - LoadOrCreate, in a data directory: it never fails; it returns a
//     32-byte key that is then the file's contents at mode 0600; a file of
//     exactly 32 bytes is the key, and any other is moved aside intact and
//     replaced by a fresh key that owes nothing to it;
//   - LoadExternal: exactly a 32-byte file is accepted, and is the key;
//     any other is refused with ErrBadSize and no key; the file is never
//     changed, nor its mode.
func FuzzSecretFile(f *testing.F) {
	for _, s := range []struct {
		contents []byte
		mode     uint16
	}{
		{pattern(32), 0o600},
		{pattern(32), 0o644},
		{pattern(32), 0o077},
		{make([]byte, 32), 0o600},
		{nil, 0o600},
		{pattern(1), 0o600},
		{pattern(31), 0o640},
		{pattern(33), 0o600},
		{pattern(64), 0o600},
		{pattern(4096), 0o666},
		{append(pattern(32), '\n'), 0o600},
		{[]byte(hex.EncodeToString(pattern(32))), 0o600},
		{[]byte(base64.StdEncoding.EncodeToString(pattern(32))), 0o600},
		{[]byte(strings.Repeat(" ", 32)), 0o600},
		{[]byte("-----BEGIN PRIVATE KEY-----\n"), 0o600},
	} {
		f.Add(s.contents, s.mode)
	}
	// One data directory for every input, emptied before each: opening one
	// per input would cost more than the loading under test.
	base := fuzzTempDir(f)
	d, err := datadir.Open(filepath.Join(base, "data"))
	if err != nil {
		f.Fatal(err)
	}
	external := filepath.Join(base, "external-secret")
	log := slog.New(slog.DiscardHandler)

	f.Fuzz(func(t *testing.T, contents []byte, mode uint16) {
		// The owner can always read and write: the bits under test are
		// group's and others', which a non-root CI runner also honours.
		perm := fs.FileMode(mode)&0o177 | 0o600
		accepted := len(contents) == secret.Size

		// LoadOrCreate.
		emptyDir(t, d.Path())
		path := d.Join(secret.FileName)
		writeFile(t, path, contents, perm)
		key, err := secret.LoadOrCreate(d, log, now)
		if err != nil {
			t.Fatalf("LoadOrCreate with a %d-byte file, mode %v: %v", len(contents), perm, err)
		}
		if len(key) != secret.Size {
			t.Fatalf("LoadOrCreate returned a %d-byte key", len(key))
		}
		onDisk, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(onDisk, key) {
			t.Fatalf("%s holds %x, the key is %x", secret.FileName, onDisk, key)
		}
		if got := modeOf(t, path); got&0o077 != 0 {
			t.Fatalf("%s: mode %v, want no group or other bits", secret.FileName, got)
		}
		names := entryNames(t, d.Path())
		if accepted {
			if !bytes.Equal(key, contents) {
				t.Fatalf("a 32-byte file loaded as %x, want its contents %x", key, contents)
			}
			if !slices.Equal(names, []string{secret.FileName}) {
				t.Fatalf("data dir holds %q after loading a good file", names)
			}
		} else {
			if bytes.Contains(contents, key) {
				t.Fatalf("a %d-byte file yielded the key %x it contains", len(contents), key)
			}
			if !slices.Equal(names, []string{secret.FileName, movedName}) {
				t.Fatalf("data dir holds %q, want %q", names, []string{secret.FileName, movedName})
			}
			if moved, err := os.ReadFile(d.Join(movedName)); err != nil || !bytes.Equal(moved, contents) {
				t.Fatalf("the bad file was not moved aside intact: %v", err)
			}
		}

		// LoadExternal.
		writeFile(t, external, contents, perm)
		key, err = secret.LoadExternal(external, log)
		switch {
		case accepted && (err != nil || !bytes.Equal(key, contents)):
			t.Fatalf("LoadExternal of a 32-byte file = %x, %v; want its contents", key, err)
		case !accepted && (err == nil || !errors.Is(err, secret.ErrBadSize) || key != nil):
			t.Fatalf("LoadExternal of a %d-byte file = %x, %v; want no key and ErrBadSize", len(contents), key, err)
		}
		if after, err := os.ReadFile(external); err != nil || !bytes.Equal(after, contents) {
			t.Fatalf("LoadExternal changed the file (%v)", err)
		}
		if got := modeOf(t, external); got != perm {
			t.Fatalf("LoadExternal changed the mode to %v, was %v", got, perm)
		}
	})
}

// fuzzTempDir returns a fresh directory, on tmpfs where there is one: a
// rejected file costs three fsyncs, which on a disk take most of an input's
// time.
func fuzzTempDir(tb testing.TB) string {
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "camd-fuzz-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// emptyDir removes everything in dir but the lock file.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	for _, name := range entryNames(t, dir) {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}
