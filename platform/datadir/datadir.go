// Package datadir prepares camd's data directory and serialises the
// check-then-repair steps that several processes may run on it at once.
package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"camd/platform/atomicfile"
)

// Dir is a data directory that was found readable and writable.
type Dir struct {
	path string
}

// Open creates the directory (mode 0700) when missing and proves that camd can
// read and write it, so a bad mount stops camd at start with the path and the
// OS error instead of failing at the first ack. It also removes the
// temporary files that writes interrupted by a crash left behind.
func Open(path string) (Dir, error) {
	if path == "" {
		return Dir{}, errors.New("data directory: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Dir{}, fmt.Errorf("data directory %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return Dir{}, fmt.Errorf("data directory %s: %w", abs, err)
	}
	if _, err := os.ReadDir(abs); err != nil {
		return Dir{}, fmt.Errorf("data directory %s is not readable: %w", abs, err)
	}
	probe, err := os.CreateTemp(abs, probePrefix+"*")
	if err != nil {
		return Dir{}, fmt.Errorf("data directory %s is not writable: %w", abs, err)
	}
	probe.Close()
	// Another process starting at once may have removed it as a leftover.
	if err := os.Remove(probe.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Dir{}, fmt.Errorf("data directory %s: remove probe: %w", abs, err)
	}
	removeLeftovers(abs)
	return Dir{path: abs}, nil
}

// probePrefix starts the name of the file Open writes to prove the
// directory writable.
const probePrefix = ".probe-"

// removeLeftovers removes what a crash or kill -9 can leave behind: the
// temporary files of interrupted atomic writes (atomicfile.RemoveTemps
// spares writes in progress, in any process) and write probes. A probe
// lives for microseconds; one of another process starting at this very
// moment may go too, which that process tolerates. It is best effort: a
// leftover it cannot remove, such as one left by root, is clutter rather
// than damage and must not stop the cam.
func removeLeftovers(dir string) {
	atomicfile.RemoveTemps(dir)
	probes, _ := filepath.Glob(filepath.Join(dir, probePrefix+"*"))
	for _, p := range probes {
		os.Remove(p)
	}
}

// Path returns the absolute path of the directory.
func (d Dir) Path() string { return d.path }

// Join returns the path of name inside the directory.
func (d Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Lock takes an exclusive advisory lock (flock) on a lock file in the
// directory and returns the function that releases it. It blocks while
// another process holds the lock. The lock is only for short critical
// sections such as "read the secret, move it aside if bad, create a new one",
// which must not interleave between two processes starting at once.
func (d Dir) Lock() (unlock func(), err error) { return d.lock(syscall.LOCK_EX) }

// RLock takes the same lock shared, for readers that must not see a writer's
// files half changed (the password hash and its version); it blocks while
// Lock is held, and readers do not block each other.
func (d Dir) RLock() (unlock func(), err error) { return d.lock(syscall.LOCK_SH) }

func (d Dir) lock(how int) (unlock func(), err error) {
	name := d.Join(".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// Closing the descriptor releases the flock.
	return func() { f.Close() }, nil
}

// Sub opens the subdirectory name of d, creating it (mode 0700) when
// missing: a module's own directory.
func (d Dir) Sub(name string) (Dir, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return Dir{}, fmt.Errorf("data directory %s: bad subdirectory name %q", d.path, name)
	}
	_, err := os.Stat(d.Join(name))
	sub, openErr := Open(d.Join(name))
	if openErr != nil {
		return Dir{}, openErr
	}
	if errors.Is(err, fs.ErrNotExist) {
		// The new entry must survive a power cut like the files in it.
		if err := atomicfile.SyncDir(d.path); err != nil {
			return Dir{}, fmt.Errorf("data directory %s: %w", d.path, err)
		}
	}
	return sub, nil
}

// Adopt moves the file name from dir from into d, where an older camd kept
// it at the top of the data directory. It does nothing when from has none,
// or when another process starting at once moved it first. When both have
// the file, d's is the one in use: the old one is left where it is for the
// owner to look at, with a warning on log. The rename is atomic, and both
// directories are synced, so a power cut leaves the file in one place or
// the other.
func (d Dir) Adopt(from Dir, name string, log *slog.Logger) error {
	dst, src := d.Join(name), from.Join(name)
	if _, err := os.Lstat(dst); err == nil {
		if _, err := os.Lstat(src); err == nil {
			log.Warn("an older camd's file is left beside the one in use, which is kept; remove the old one", "old", src, "in_use", dst)
		}
		return nil
	}
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.Rename(src, dst); err != nil {
		if _, statErr := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) && statErr == nil {
			return nil // another process moved it between our look and the rename
		}
		return fmt.Errorf("move %s into %s: %w", src, d.path, err)
	}
	if err := atomicfile.SyncDir(d.path); err != nil {
		return fmt.Errorf("move %s: %w", src, err)
	}
	if err := atomicfile.SyncDir(from.path); err != nil {
		return fmt.Errorf("move %s: %w", src, err)
	}
	return nil
}
