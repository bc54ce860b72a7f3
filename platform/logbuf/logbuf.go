// Package logbuf batches a log's writes: a busy server then makes one
// write(2) per batch of lines instead of one per request, which on a cam's
// single core is CPU taken from video. A line waits at most Delay; a clean
// stop (Close) writes everything. Only the access log is batched: Handler
// writes every other log record at once. What a crash takes with it is at
// most the last Delay of access lines.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults for New: lines wait at most a second, and a batch is written
// once 16 KiB (about 120 access-log lines) are waiting.
const (
	DefaultSize  = 16 << 10
	DefaultDelay = time.Second
)

// Writer buffers writes to w. It is safe for concurrent use.
type Writer struct {
	w     io.Writer
	size  int
	delay time.Duration

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // flushes delay after the first write into an empty buffer
	armed  bool
	closed bool
}

// New returns a Writer that passes to w what is written to it, in batches
// of up to size bytes, each at most delay after its first byte.
func New(w io.Writer, size int, delay time.Duration) *Writer {
	b := &Writer{w: w, size: size, delay: delay, buf: make([]byte, 0, size)}
	b.timer = time.AfterFunc(time.Hour, func() { b.Flush() })
	b.timer.Stop()
	return b
}

// Write buffers p. A write that would overflow the buffer sends what waits
// first; one as large as the buffer, or any after Close, goes straight to w.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(p) >= b.size {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > b.size {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	if !b.armed {
		b.armed = true
		b.timer.Reset(b.delay)
	}
	return len(p), nil
}

// Flush writes what waits.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// flushLocked writes the buffer. On an error the batch is dropped: a log
// that cannot be written must not grow without bound.
func (b *Writer) flushLocked() error {
	if b.armed {
		b.timer.Stop()
		b.armed = false
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close writes what waits; later writes go straight to w, unbuffered, so
// that lines logged while stopping are not lost.
func (b *Writer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

// Handler wraps h, which writes to w, so that each of its records is
// written at once, together with everything before it: what camd logs
// besides the access log is rare, and a warning or an error must not wait,
// nor be lost if the process dies next.
func Handler(h slog.Handler, w *Writer) slog.Handler {
	return &flushing{Handler: h, w: w}
}

type flushing struct {
	slog.Handler
	w *Writer
}

func (f *flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if ferr := f.w.Flush(); err == nil {
		err = ferr
	}
	return err
}

func (f *flushing) WithAttrs(as []slog.Attr) slog.Handler {
	return &flushing{Handler: f.Handler.WithAttrs(as), w: f.w}
}

func (f *flushing) WithGroup(name string) slog.Handler {
	return &flushing{Handler: f.Handler.WithGroup(name), w: f.w}
}
