//go:build !linux

package password

import (
	"errors"
	"io/fs"
	"os"
)

// A changeWatch tells when password.changed was replaced (see
// stamp_linux.go); elsewhere than Linux, with os.Stat.
type changeWatch struct{ path string }

type fileStamp struct{ info fs.FileInfo }

func newChangeWatch(_, _, path string) *changeWatch { return &changeWatch{path: path} }

func (w *changeWatch) stamp() (fileStamp, bool, error) {
	info, err := os.Stat(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, false, nil
	}
	return fileStamp{info}, err == nil, err
}

func (a fileStamp) same(b fileStamp) bool {
	return a.info != nil && b.info != nil && os.SameFile(a.info, b.info) &&
		a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}
