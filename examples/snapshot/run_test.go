package snapshot

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRunFlushes: Run writes a changed count on its ticker, without waiting
// for the stop, and once more when ctx ends.
func TestRunFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	m := &Module{log: slog.New(slog.DiscardHandler), state: path, every: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()

	m.served.Add(2)
	// Bounded polling, no timing assertion: the tick comes when it comes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, err := load(path); err == nil && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not write the count on its ticker")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.served.Add(1)
	cancel()
	<-done
	if n, err := load(path); err != nil || n != 3 {
		t.Errorf("count after stop = %d, %v; want 3", n, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("count file mode: %v %v, want 0600", st.Mode(), err)
	}
}
