// Package atomicfile writes files so that a crash or power cut at any moment
// leaves either the old file, no file, or the complete new file: never a torn one.
//
// The recipe is the usual one: write a temporary file in the same directory,
// fsync it, move it into place (rename to replace, link to create), then fsync
// the directory so the new name itself is durable.
//
// A crash between creating the temporary file and moving it into place
// leaves the temporary file behind. RemoveTemps, run at start, removes those:
// a write in progress holds a flock on its temporary file, so the cleanup
// tells a leftover of a dead process from a live write in another one.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WriteFile atomically replaces path with data, with permissions perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	tmp := f.Name()
	// Closing drops the temp file's lock, so only after the rename: until
	// then RemoveTemps in another process must leave it alone. The data
	// is fsynced already; a close error could not lose it.
	defer f.Close()
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: rename into %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// Create atomically creates path holding data, with permissions perm, only if
// path does not exist yet. When it does, Create leaves it untouched and returns
// an error matching fs.ErrExist: of several processes racing to create the same
// file, exactly one wins and the others can read what it wrote.
//
// File systems without hard links (FAT, as on most SD cards) get a
// check-then-rename instead: still atomic for readers, but exclusive only when
// the racing callers hold a common lock, such as datadir.Lock.
func Create(path string, data []byte, perm fs.FileMode) error {
	f, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	tmp := f.Name()
	// Deferred calls run last first: the temp name, a second name after a
	// link, is dropped before the lock that keeps RemoveTemps away.
	defer f.Close()
	defer os.Remove(tmp)
	// link(2) fails with EEXIST instead of replacing, unlike rename(2).
	err = os.Link(tmp, path)
	if err != nil && !errors.Is(err, fs.ErrExist) && Unsupported(err) {
		err = renameIfAbsent(tmp, path)
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("atomicfile: create %s: %w", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("atomicfile: create %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

func renameIfAbsent(tmp, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fs.ErrExist
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, path)
}

// Unsupported reports whether err says the file system cannot do the operation
// at all (FAT answers EPERM to link and chmod), rather than that it failed.
func Unsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS)
}

// tempInfix joins a file's name and the random suffix in its temporary
// name: ".<base>.tmp-<digits>".
const tempInfix = ".tmp-"

// writeTemp writes data to a fresh temporary file next to path, fsyncs it and
// returns it open and flocked: the caller moves it into place, then closes
// it, which drops the lock. The lock tells RemoveTemps, in this process or
// another, that the file is not a leftover of a crash. The file has exactly
// perm, whatever the umask, where the file system keeps Unix modes.
func writeTemp(path string, data []byte, perm fs.FileMode) (_ *os.File, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var f *os.File
	// RemoveTemps may take the name between its creation and the lock; a
	// fresh name then. A start-up cleanup hits that window rarely, but a
	// writer descheduled there on a loaded machine can lose it several
	// times in a row (seen: 3, under go test -race with a cleanup loop);
	// the bound only rules out a loop.
	for attempt := 0; f == nil; attempt++ {
		if attempt == 100 {
			return nil, fmt.Errorf("atomicfile: temp for %s: removed by a concurrent cleanup %d times", path, attempt)
		}
		if f, err = createLocked(dir, "."+base+tempInfix+"*"); err != nil {
			return nil, fmt.Errorf("atomicfile: create temp for %s: %w", path, err)
		}
	}
	name := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	// CreateTemp made it 0600. A file system that keeps no Unix modes (FAT)
	// refuses chmod; its mount options decide access, so carry on.
	if perm != 0o600 {
		if err := f.Chmod(perm); err != nil && !Unsupported(err) {
			return nil, fmt.Errorf("atomicfile: chmod %s: %w", name, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return nil, fmt.Errorf("atomicfile: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("atomicfile: fsync %s: %w", name, err)
	}
	return f, nil
}

// createLocked creates a temporary file and flocks it. It returns nil, nil
// when RemoveTemps removed the name before the lock was taken.
func createLocked(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		if noLocks(err) {
			// RemoveTemps cannot lock either, so it removes nothing
			// there: writing unlocked is safe.
			return f, nil
		}
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	named, err := stillNamed(f)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if !named {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// flock applies how to f, retrying when a signal interrupts the wait.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// noLocks reports whether err says the file system has no flock.
func noLocks(err error) bool {
	return Unsupported(err) || errors.Is(err, syscall.ENOLCK)
}

// stillNamed reports whether f's name still refers to f.
func stillNamed(f *os.File) (bool, error) {
	info, err := f.Stat()
	if err != nil {
		return false, err
	}
	named, err := os.Lstat(f.Name())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(info, named), nil
}

// IsTemp reports whether name (a base name) is one of the temporary names
// WriteFile and Create write under: ".<base>.tmp-<digits>".
func IsTemp(name string) bool {
	i := strings.LastIndex(name, tempInfix)
	if i < 2 || name[0] != '.' {
		return false
	}
	digits := name[i+len(tempInfix):]
	if digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// RemoveTemps removes from dir the temporary files of writes that a crash
// or kill -9 interrupted, and returns their names. A write in progress, in
// this process or another, holds a flock on its temporary file and is left
// alone, so this is safe while other processes write in dir. Files it cannot
// remove are named in the error; the others are still removed.
func RemoveTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("atomicfile: remove temps: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsTemp(e.Name()) {
			continue
		}
		ok, err := removeAbandoned(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("atomicfile: remove temp %s: %w", filepath.Join(dir, e.Name()), err))
		}
		if ok {
			removed = append(removed, e.Name())
		}
	}
	return removed, errors.Join(errs...)
}

// removeAbandoned removes the temporary file name unless a writer holds its
// lock. It reports whether it removed it.
func removeAbandoned(name string) (bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // moved into place meanwhile
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil // a live write
		}
		return false, err
	}
	// Locked: its writer died, finished, or has not taken the lock yet (it
	// then sees the name gone and starts over). The name may have been
	// moved into place since the open; then it no longer refers to f.
	named, err := stillNamed(f)
	if err != nil || !named {
		return false, err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in it
// survive a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync dir %s: %w", dir, err)
	}
	return nil
}

// MoveAside renames a damaged file to <path>.bad-<unix time> (with a counter
// when that exists), keeping it for inspection, makes the rename durable and
// returns the new name.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".bad-" + strconv.FormatInt(now.Unix(), 10)
	bad := base
	for i := 1; ; i++ {
		_, err := os.Lstat(bad)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			// Any other error (ENAMETOOLONG, EACCES, ENOTDIR) would repeat
			// for every counter value: give up instead of spinning forever.
			return "", fmt.Errorf("atomicfile: move %s aside: %w", path, err)
		}
		bad = base + "." + strconv.Itoa(i)
	}
	if err := os.Rename(path, bad); err != nil {
		return "", fmt.Errorf("atomicfile: move %s aside: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return "", err
	}
	return bad, nil
}

// Tighten makes a private file that group or others can read private again
// (0600), with a warning naming what it holds. On a file system that keeps
// no Unix modes (FAT) it only warns: the mount options decide who can read
// the card, and refusing to start would not protect it.
func Tighten(path, what string, log *slog.Logger) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s %s: %w", what, path, err)
	}
	perm := info.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		if !Unsupported(err) {
			return fmt.Errorf("tighten %s %s: %w", what, path, err)
		}
		log.Warn(what+" file is readable by group or others and its file system cannot change that; restrict the mount (for FAT: fmask=0077)",
			"path", path, "mode", perm.String(), "err", err)
		return nil
	}
	log.Warn(what+" file was readable by group or others; tightened it to 0600", "path", path, "was", perm.String())
	return nil
}
