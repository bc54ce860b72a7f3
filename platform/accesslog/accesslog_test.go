package accesslog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// slogLine is the line slog itself writes for e: the reference the fast
// path must match byte for byte.
func slogLine(t testing.TB, format string, e Entry) string {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if format == "json" {
		h = slog.NewJSONHandler(&buf, nil)
	}
	r := slog.NewRecord(e.Time, slog.LevelInfo, Message, 0)
	r.AddAttrs(slog.String("id", e.ID), slog.String("method", e.Method), slog.String("path", e.Path),
		slog.Int("status", e.Status), slog.Duration("latency", e.Latency), slog.String("remote", e.Remote))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// countingWriter records each Write, so a test can see one write per line.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func logLine(format string, e Entry) (string, int) {
	var w countingWriter
	New(&w, format).Log(e)
	return w.String(), w.writes
}

func TestLineMatchesSlog(t *testing.T) {
	base := Entry{
		Time:    time.Date(2026, 12, 2, 14, 49, 17, 894354123, time.UTC),
		ID:      "SLvTHJzLTSfwheuKRuRssMTEIEMnlpjz",
		Method:  "GET",
		Path:    "/api/ack",
		Status:  200,
		Latency: 10210729 * time.Nanosecond,
		Remote:  "127.0.0.1",
	}
	with := func(f func(*Entry)) Entry { e := base; f(&e); return e }
	tests := []struct {
		name  string
		e     Entry
		plain bool // takes the fast path
	}{
		{"typical", base, true},
		{"ipv6 remote", with(func(e *Entry) { e.Remote = "::1" }), true},
		{"whole millisecond", with(func(e *Entry) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }), true},
		{"other zone", with(func(e *Entry) { e.Time = e.Time.In(time.FixedZone("X", -5*3600-1800)) }), true},
		{"monotonic reading", with(func(e *Entry) { e.Time = time.Now() }), true},
		{"zero latency", with(func(e *Entry) { e.Latency = 0 }), true},
		{"long latency", with(func(e *Entry) { e.Latency = 93*time.Minute + 7*time.Millisecond }), true},
		{"404", with(func(e *Entry) { e.Status, e.Path = 404, "/no/such/thing.txt" }), true},
		{"path with space", with(func(e *Entry) { e.Path = "/a b" }), false},
		{"path with quote", with(func(e *Entry) { e.Path = `/a"b` }), false},
		{"path with equals", with(func(e *Entry) { e.Path = "/a=b" }), false},
		{"path with backslash", with(func(e *Entry) { e.Path = `/a\b` }), false},
		{"path with html", with(func(e *Entry) { e.Path = "/<script>&" }), false},
		{"path with newline", with(func(e *Entry) { e.Path = "/a\nlevel=ERROR" }), false},
		{"path with control", with(func(e *Entry) { e.Path = "/a\x00\x1b[2J" }), false},
		{"path not utf-8", with(func(e *Entry) { e.Path = "/\xff\xfe" }), false},
		{"path unicode", with(func(e *Entry) { e.Path = "/caméra" }), false},
		{"empty id", with(func(e *Entry) { e.ID = "" }), false},
		{"empty remote", with(func(e *Entry) { e.Remote = "" }), false},
		{"year 10000", with(func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"zero time", with(func(e *Entry) { e.Time = time.Time{} }), false},
	}
	for _, tc := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				if got := plainEntry(tc.e); got != tc.plain {
					t.Errorf("plainEntry = %v, want %v", got, tc.plain)
				}
				got, writes := logLine(format, tc.e)
				if want := slogLine(t, format, tc.e); got != want {
					t.Errorf("line differs from slog's:\n got %q\nwant %q", got, want)
				}
				if writes != 1 {
					t.Errorf("%d writes for one line, want 1", writes)
				}
			})
		}
	}
}

// FuzzLineMatchesSlog: whatever a client puts in the path (or a proxy in
// the address), the line is the one slog writes, so it cannot forge a
// second line or a field.
func FuzzLineMatchesSlog(f *testing.F) {
	f.Add("/api/ack", "127.0.0.1", "abc", 200, int64(1234567), int64(1796222611894354123))
	f.Add("/a b\n", "", "", 404, int64(0), int64(0))
	f.Add("/\u2028x", "[::1]", "x=y", 500, int64(-5), int64(-1))
	f.Fuzz(func(t *testing.T, path, remote, id string, status int, latency, unixNano int64) {
		e := Entry{Time: time.Unix(0, unixNano).UTC(), ID: id, Method: "GET", Path: path, Status: status,
			Latency: time.Duration(latency), Remote: remote}
		for _, format := range []string{"text", "json"} {
			got, _ := logLine(format, e)
			if want := slogLine(t, format, e); got != want {
				t.Fatalf("%s line differs from slog's:\n got %q\nwant %q", format, got, want)
			}
			if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
				t.Fatalf("%s: not exactly one line: %q", format, got)
			}
		}
	})
}

// TestFromHandlerHonoursLevel: a Logger made from a handler set above INFO
// writes no access lines, as a slog.Logger over it would not.
func TestFromHandlerHonoursLevel(t *testing.T) {
	e := Entry{Time: time.Now(), ID: "id", Method: "GET", Path: "/p", Status: 200, Remote: "127.0.0.1"}
	tests := []struct {
		level slog.Level
		want  bool
	}{
		{slog.LevelDebug, true},
		{slog.LevelInfo, true},
		{slog.LevelWarn, false},
		{slog.LevelError, false},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		FromHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})).Log(e)
		if got := buf.Len() > 0; got != tc.want {
			t.Errorf("handler at %v: wrote a line %v, want %v", tc.level, got, tc.want)
		}
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	var w countingWriter
	var mu = make(chan struct{}, 1)
	lw := lockedWriter{w: &w, mu: mu}
	l := New(lw, "text")
	e := Entry{Time: time.Now(), ID: "id", Method: "GET", Path: "/p", Status: 200, Remote: "127.0.0.1"}
	done := make(chan struct{})
	for range 8 {
		go func() {
			for range 200 {
				l.Log(e)
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	want := strings.TrimSuffix(slogLine(t, "text", e), "\n")
	for i, line := range lines {
		if line != want {
			t.Fatalf("line %d = %q, want %q", i, line, want)
		}
	}
}

type lockedWriter struct {
	w  *countingWriter
	mu chan struct{}
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

func BenchmarkLog(b *testing.B) {
	e := Entry{Time: time.Now(), ID: "SLvTHJzLTSfwheuKRuRssMTEIEMnlpjz", Method: "GET", Path: "/api/ack",
		Status: 200, Latency: 1234567, Remote: "127.0.0.1"}
	var sink countingWriter
	b.Run("fast", func(b *testing.B) {
		l := New(&sink, "text")
		b.ReportAllocs()
		for b.Loop() {
			sink.Reset()
			l.Log(e)
		}
	})
	b.Run("slog", func(b *testing.B) {
		log := slog.New(slog.NewTextHandler(&sink, nil))
		b.ReportAllocs()
		for b.Loop() {
			sink.Reset()
			log.LogAttrs(context.Background(), slog.LevelInfo, Message, slog.String("id", e.ID),
				slog.String("method", e.Method), slog.String("path", e.Path), slog.Int("status", e.Status),
				slog.Duration("latency", e.Latency), slog.String("remote", e.Remote))
		}
	})
}
