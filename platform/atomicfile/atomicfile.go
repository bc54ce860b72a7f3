// Package atomicfile writes files so that a crash or power cut at any moment
// leaves either the old file, no file, or the complete new file: never a torn one.
//
// The recipe is the usual one: write a temporary file in the same directory,
// fsync it, move it into place (rename to replace, link to create), then fsync
// the directory so the new name itself is durable.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WriteFile atomically replaces path with data, with permissions perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
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
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after a link the temp name is a second name to drop
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

// writeTemp writes data to a fresh temporary file next to path, fsyncs it and
// returns its name. The file has exactly perm, whatever the umask, where the
// file system keeps Unix modes.
func writeTemp(path string, data []byte, perm fs.FileMode) (name string, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("atomicfile: create temp for %s: %w", path, err)
	}
	name = f.Name()
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
			return "", fmt.Errorf("atomicfile: chmod %s: %w", name, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return "", fmt.Errorf("atomicfile: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("atomicfile: fsync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("atomicfile: close %s: %w", name, err)
	}
	return name, nil
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
