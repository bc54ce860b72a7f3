// Package accesslog writes camd's access log: one line per request, in the
// same text or JSON form as the rest of the log (log/slog's TextHandler or
// JSONHandler), at a fraction of the cost. Under load the line is the
// largest piece of per-request work camd adds to net/http (see
// docs/performance.md), so the common line, whose values need no quoting
// or escaping, is appended by hand; any other line is handed to slog's own
// handler, so what is written is always exactly what slog would write.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Entry is one request.
type Entry struct {
	Time    time.Time // when it was answered
	ID      string    // the request id
	Method  string
	Path    string // without the query string
	Status  int
	Latency time.Duration
	Remote  string // the client address
}

// Message is the log message of every access line.
const Message = "request"

// Logger writes entries to w. It is safe for concurrent use.
type Logger struct {
	w    io.Writer
	json bool
	slow slog.Handler // for entries with a value that needs quoting
	pool sync.Pool    // *[]byte line buffers
}

// New returns a Logger writing lines to w in format "text" or "json", as
// slog.NewTextHandler or slog.NewJSONHandler would with default options.
// w gets one Write per line.
func New(w io.Writer, format string) *Logger {
	l := &Logger{w: w, json: format == "json"}
	if l.json {
		l.slow = slog.NewJSONHandler(w, nil)
	} else {
		l.slow = slog.NewTextHandler(w, nil)
	}
	l.pool.New = func() any { b := make([]byte, 0, 256); return &b }
	return l
}

// FromHandler returns a Logger that hands every entry to h, as a record
// with the same attributes: for tests and embedders that log elsewhere
// than a file.
func FromHandler(h slog.Handler) *Logger {
	return &Logger{slow: h}
}

// Log writes e's line. Write errors are dropped, as slog drops them.
func (l *Logger) Log(e Entry) {
	if l.w == nil || !plainEntry(e) {
		l.slowLog(e)
		return
	}
	bp := l.pool.Get().(*[]byte)
	b := (*bp)[:0]
	if l.json {
		b = l.appendJSON(b, e)
	} else {
		b = l.appendText(b, e)
	}
	_, _ = l.w.Write(b)
	*bp = b
	l.pool.Put(bp)
}

func (l *Logger) slowLog(e Entry) {
	if !l.slow.Enabled(context.Background(), slog.LevelInfo) {
		return // a handler set above INFO drops the access log, as slog would
	}
	r := slog.NewRecord(e.Time, slog.LevelInfo, Message, 0)
	r.AddAttrs(
		slog.String("id", e.ID),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.Duration("latency", e.Latency),
		slog.String("remote", e.Remote),
	)
	_ = l.slow.Handle(context.Background(), r)
}

// appendText appends what slog's TextHandler writes for a plain entry.
func (l *Logger) appendText(b []byte, e Entry) []byte {
	b = append(b, "time="...)
	b = appendMillis(b, e.Time)
	b = append(b, " level=INFO msg="+Message+" id="...)
	b = append(b, e.ID...)
	b = append(b, " method="...)
	b = append(b, e.Method...)
	b = append(b, " path="...)
	b = append(b, e.Path...)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, " latency="...)
	b = append(b, e.Latency.String()...)
	b = append(b, " remote="...)
	b = append(b, e.Remote...)
	return append(b, '\n')
}

// appendMillis appends t as RFC 3339 with exactly three digits of
// fraction, as slog's TextHandler does and by its method: time's RFC 3339
// formatting has a fast path that a layout with ".000" does not, but trims
// trailing zeros, so a tenth of a millisecond is added and the fourth digit
// dropped.
func appendMillis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Round(0).Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// appendJSON appends what slog's JSONHandler writes for a plain entry.
func (l *Logger) appendJSON(b []byte, e Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"`+Message+`","id":"`...)
	b = append(b, e.ID...)
	b = append(b, `","method":"`...)
	b = append(b, e.Method...)
	b = append(b, `","path":"`...)
	b = append(b, e.Path...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"latency":`...)
	b = strconv.AppendInt(b, int64(e.Latency), 10)
	b = append(b, `,"remote":"`...)
	b = append(b, e.Remote...)
	return append(b, "\"}\n"...)
}

// plainEntry reports whether every string of e is written as it is, both
// in slog's text form (no quoting) and in JSON (no escaping), and its time
// is one slog writes as such: not zero (slog leaves a zero time out), and
// a year it formats without complaint.
func plainEntry(e Entry) bool {
	if y := e.Time.Year(); e.Time.IsZero() || y < 0 || y >= 10000 {
		return false
	}
	return plain(e.ID) && plain(e.Method) && plain(e.Path) && plain(e.Remote)
}

// plain reports whether s is non-empty and made only of bytes that neither
// slog's text quoting nor JSON escaping touches: a conservative subset of
// both, which request ids, methods, paths and addresses almost always are.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

var plainByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~/:%+,@!$'()*;[]" {
		t[c] = true
	}
	return t
}()
