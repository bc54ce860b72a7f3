package logbuf

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records what reaches the file beneath, and in how many writes.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	fail   error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes++
	return s.buf.Write(p)
}

func (s *sink) state() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String(), s.writes
}

func lines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("line %04d\n", i)
	}
	return out
}

func TestBatches(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		writes     []string
		wantWrites int // reaching the sink before Flush
	}{
		{"small lines wait", 1 << 10, lines(50), 0},   // 500 bytes
		{"a full buffer goes out", 100, lines(25), 2}, // 250 bytes in batches of 100
		{"a line as large as the buffer goes straight", 8, []string{"ab\n", "0123456789\n", "cd\n"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sink
			w := New(&s, tc.size, time.Hour)
			for _, l := range tc.writes {
				if n, err := w.Write([]byte(l)); err != nil || n != len(l) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if _, writes := s.state(); writes != tc.wantWrites {
				t.Errorf("%d writes before Flush, want %d", writes, tc.wantWrites)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got, want := func() string { g, _ := s.state(); return g }(), strings.Join(tc.writes, ""); got != want {
				t.Errorf("after Flush the sink has %q, want %q (everything, in order)", got, want)
			}
		})
	}
}

func TestWithinDelay(t *testing.T) {
	var s sink
	w := New(&s, 1<<10, 20*time.Millisecond)
	w.Write([]byte("one\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := s.state(); got == "one\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a line written 5 s ago has not reached the sink")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The timer is armed again by the next line after a flush.
	w.Write([]byte("two\n"))
	for {
		if got, _ := s.state(); got == "one\ntwo\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the second line never reached the sink")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseWritesEverythingAndStopsBuffering(t *testing.T) {
	var s sink
	w := New(&s, 1<<10, time.Hour)
	w.Write([]byte("before\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.state(); got != "before\n" {
		t.Fatalf("after Close the sink has %q", got)
	}
	w.Write([]byte("after\n"))
	if got, _ := s.state(); got != "before\nafter\n" {
		t.Fatalf("a write after Close waits: the sink has %q", got)
	}
}

func TestHandlerWritesRecordsAtOnce(t *testing.T) {
	var s sink
	w := New(&s, 1<<10, time.Hour)
	log := slog.New(Handler(slog.NewTextHandler(w, nil), w)).With("module", "m")
	w.Write([]byte("access line\n")) // batched, as the access log's are
	log.Info("event", "k", "v")
	got, _ := s.state()
	if !strings.HasPrefix(got, "access line\n") || !strings.Contains(got, "msg=event module=m k=v") {
		t.Fatalf("after a record the sink has %q; want the waiting line, then the record", got)
	}
	log.WithGroup("g").Warn("warned")
	if got, _ := s.state(); !strings.Contains(got, "msg=warned") {
		t.Fatalf("a record through WithGroup waits: %q", got)
	}
}

func TestWriteErrorDropsTheBatch(t *testing.T) {
	s := sink{fail: errors.New("disk full")}
	w := New(&s, 1<<10, time.Hour)
	w.Write([]byte("lost\n"))
	if err := w.Flush(); err == nil {
		t.Fatal("Flush hid the write error")
	}
	s.fail = nil
	w.Write([]byte("kept\n"))
	w.Flush()
	if got, _ := s.state(); got != "kept\n" {
		t.Fatalf("sink has %q, want only the line after the error", got)
	}
}

// TestConcurrentWritersLoseNothing: many goroutines, a small buffer and a
// short delay so that timer flushes, full-buffer flushes and Close race;
// every line arrives whole, each goroutine's in its order.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	var s sink
	w := New(&s, 256, time.Millisecond)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w.Write(fmt.Appendf(nil, "g%d %04d\n", g, i))
			}
		})
	}
	wg.Wait()
	w.Close()
	got, _ := s.state()
	next := make([]int, writers)
	all := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for _, l := range all {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d %d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("torn line %q", l)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if len(all) != writers*each {
		t.Fatalf("%d lines, want %d", len(all), writers*each)
	}
}
