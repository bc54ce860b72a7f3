package password

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// A changeWatch tells when password.changed was replaced. Every owner
// request asks, so it is cheap: one fstatat(2) relative to the data
// directory, held open, instead of os.Stat's walk from the root and its
// allocations (docs/performance.md). password.changed is replaced by a
// rename, never written in place, so a new file is a new inode.
type changeWatch struct {
	dir  *os.File // O_PATH; nil when it could not be opened: then os.Stat
	name string
	path string
}

// fileStamp identifies one version of the file.
type fileStamp struct {
	dev, ino, size uint64
	mtime, ctime   unix.Timespec // ctime too: a rename sets it, and an inode number can be reused
}

func newChangeWatch(dir, name, path string) *changeWatch {
	w := &changeWatch{name: name, path: path}
	if f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		w.dir = f // closed by its finalizer with the Store
	}
	return w
}

// stamp returns the file's stamp, and false when there is no file.
func (w *changeWatch) stamp() (fileStamp, bool, error) {
	var st unix.Stat_t
	var err error
	if w.dir != nil {
		err = unix.Fstatat(int(w.dir.Fd()), w.name, &st, 0)
		runtime.KeepAlive(w.dir)
	} else {
		err = unix.Stat(w.path, &st)
	}
	if errors.Is(err, unix.ENOENT) {
		return fileStamp{}, false, nil
	}
	if err != nil {
		return fileStamp{}, false, fmt.Errorf("stat %s: %w", w.path, err)
	}
	return fileStamp{dev: uint64(st.Dev), ino: uint64(st.Ino), size: uint64(st.Size), mtime: st.Mtim, ctime: st.Ctim}, true, nil // field widths differ by architecture
}

func (a fileStamp) same(b fileStamp) bool { return a == b }
