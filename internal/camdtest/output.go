package camdtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"sync"
)

// PasswordPrefix starts the line on which camd prints the initial owner
// password, once, on its first start.
const PasswordPrefix = "initial owner password: "

// PasswordIn returns the initial owner password printed in out (a
// container's logs, say), or "".
func PasswordIn(out string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if pw, ok := strings.CutPrefix(line, PasswordPrefix); ok {
			return strings.TrimSpace(pw)
		}
	}
	return ""
}

// WithoutPassword returns out without the initial-password line, so that
// failure messages and log assertions never carry the secret.
func WithoutPassword(out string) string {
	var keep []string
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, PasswordPrefix) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// output reads the child's stdout and stderr, which share one pipe.
//
// The parent keeps its own copy of the pipe's write end. Once READY=1 has
// come, sync writes a mark into the pipe: camd printed the password before
// it signalled, so once the reader meets the mark it has read the password
// line too. Without that the two channels (socket and pipe) could race.
type output struct {
	r      *os.File
	filter func(line []byte) bool
	log    io.Writer // nil: the lines after readiness stay in memory
	mark   []byte

	wmu sync.Mutex // guards w; apart from mu, so a full pipe blocks no reader
	w   *os.File   // nil once the child has exited

	mu       sync.Mutex
	mem      bytes.Buffer
	ready    bool // the mark was read
	password string

	synced chan struct{} // closed when the mark is read
	eof    chan struct{} // closed when the reader has returned
}

func newOutput(filter func([]byte) bool, log io.Writer) (o *output, childEnd *os.File, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	mark := make([]byte, 8)
	rand.Read(mark)
	o = &output{
		r: r, w: w, filter: filter, log: log,
		mark:   []byte("\x00camdtest-sync-" + hex.EncodeToString(mark) + "\n"),
		synced: make(chan struct{}),
		eof:    make(chan struct{}),
	}
	return o, w, nil
}

func (o *output) read() {
	defer close(o.eof)
	br := bufio.NewReaderSize(o.r, 64<<10)
	for {
		// ErrBufferFull hands over a long line in pieces: the child
		// never blocks on a line the reader cannot hold.
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && o.line(line) && o.filter == nil {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
	// Past readiness without a filter: no password comes any more, so
	// copy in bulk (a splice into a file), cheap for a loaded process.
	if _, err := br.WriteTo(o.sink()); err != nil {
		io.Copy(io.Discard, o.r)
	}
}

// line takes one line (or piece) and reports whether it held the mark.
func (o *output) line(line []byte) bool {
	if bytes.HasSuffix(line, o.mark) {
		if rest := line[:len(line)-len(o.mark)]; len(rest) > 0 {
			o.line(rest) // a piece written before the mark
		}
		o.mu.Lock()
		o.ready = true
		o.mu.Unlock()
		close(o.synced)
		return true
	}
	if pw, ok := bytes.CutPrefix(line, []byte(PasswordPrefix)); ok {
		o.mu.Lock()
		o.password = strings.TrimSpace(string(pw))
		o.mem.Write(line) // never to the log file
		o.mu.Unlock()
		return false
	}
	if o.filter != nil && o.filter(bytes.TrimSuffix(line, []byte("\n"))) {
		return false
	}
	o.mu.Lock()
	if o.log == nil || !o.ready {
		o.mem.Write(line)
	}
	o.mu.Unlock()
	if o.log != nil {
		o.log.Write(line) // a full disk must not stop the reader
	}
	return false
}

// sink is where the output goes after the mark.
func (o *output) sink() io.Writer {
	if o.log != nil {
		return o.log
	}
	return memWriter{o}
}

type memWriter struct{ o *output }

func (m memWriter) Write(p []byte) (int, error) {
	m.o.mu.Lock()
	defer m.o.mu.Unlock()
	return m.o.mem.Write(p)
}

// sync writes the mark and returns a channel closed once the reader has
// passed it, or has ended.
func (o *output) sync() <-chan struct{} {
	o.wmu.Lock()
	if o.w != nil {
		o.w.Write(o.mark)
	}
	o.wmu.Unlock()
	return o.synced
}

// closeWrite drops the parent's write end once the child has exited, so
// the reader sees EOF after the last byte.
func (o *output) closeWrite() {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	if o.w != nil {
		o.w.Close()
		o.w = nil
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mem.String()
}

func (o *output) initialPassword() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.password
}
