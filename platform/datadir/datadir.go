// Package datadir prepares camd's data directory and serialises the
// check-then-repair steps that several processes may run on it at once.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Dir is a data directory that was found readable and writable.
type Dir struct {
	path string
}

// Open creates the directory (mode 0700) when missing and proves that camd can
// read and write it, so a bad mount stops camd at start with the path and the
// OS error instead of failing at the first ack.
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
	probe, err := os.CreateTemp(abs, ".probe-*")
	if err != nil {
		return Dir{}, fmt.Errorf("data directory %s is not writable: %w", abs, err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return Dir{}, fmt.Errorf("data directory %s: remove probe: %w", abs, err)
	}
	return Dir{path: abs}, nil
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
func (d Dir) Lock() (unlock func(), err error) {
	name := d.Join(".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
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
