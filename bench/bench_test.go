package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camd/internal/camdtest"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value, p50", ms(7), 50, 7 * time.Millisecond},
		{"one value, p99", ms(7), 99, 7 * time.Millisecond},
		{"two values, p50 is the lower (nearest rank, no interpolation)", ms(1, 9), 50, 1 * time.Millisecond},
		{"two values, p51", ms(1, 9), 51, 9 * time.Millisecond},
		{"four values, p50", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"four values, p75", ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{"four values, p100", ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{"tiny p is the minimum", ms(1, 2, 3, 4), 0.001, 1 * time.Millisecond},
		{"1..100, p50", hundred, 50, 50 * time.Millisecond},
		{"1..100, p99", hundred, 99, 99 * time.Millisecond},
		{"1..100, p99.5 rounds up", hundred, 99.5, 100 * time.Millisecond},
		{"ties", ms(5, 5, 5, 5, 9), 80, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10}, 10},
	}
	for _, tt := range tests {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Errorf("median reordered its argument: %v", xs)
	}
}

func TestParseStatTicks(t *testing.T) {
	// Real lines from /proc/PID/stat, shortened after field 20 where it
	// does not matter; utime and stime are fields 14 and 15.
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{"plain", "1234 (camd) S 1 1234 1234 0 -1 4194560 1021 0 0 0 250 36 0 0 20 0 9 0", 286, false},
		{"command with spaces and parens", "42 (my (odd) cmd) R 1 42 42 0 -1 0 0 0 0 0 7 5 0 0 20 0 1 0", 12, false},
		{"zero", "7 (bench) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0", 0, false},
		{"trailing newline", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 100 200 0 0 20 0 1 0\n", 300, false},
		{"large", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 4294967296 1 0 0 20 0 1 0", 4294967297, false},
		{"no command", "1234 camd S 1", 0, true},
		{"too short", "1234 (camd) S 1 1234 1234 0 -1 0 0 0 0 0 250", 0, true},
		{"not a number", "1234 (camd) S 1 1234 1234 0 -1 0 0 0 0 0 x 36 0 0 20 0 9 0", 0, true},
		{"negative", "1234 (camd) S 1 1234 1234 0 -1 0 0 0 0 0 5 -3 0 0 20 0 9 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatTicks(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatTicks(%q) = %d, %v; want %d, error %v", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseKiB(t *testing.T) {
	status := "Name:\tcamd\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1241196 kB\nVmHWM:\t   17100 kB\nVmRSS:\t    9728 kB\nThreads:\t7\n"
	// Shortened from a real /proc/PID/smaps_rollup.
	smaps := "564988d1b000-7ffdf6b09000 ---p 00000000 00:00 0                          [rollup]\n" +
		"Rss:               12288 kB\nPss:                9000 kB\nPss_Anon:           8100 kB\n" +
		"Shared_Clean:       3000 kB\nAnonymous:           8192 kB\nAnonHugePages:         0 kB\n"
	tests := []struct {
		name, text, field string
		want              int64
		wantErr           bool
	}{
		{"VmRSS", status, "VmRSS", 9728, false},
		{"VmHWM", status, "VmHWM", 17100, false},
		{"prefix of another field is not it", status, "VmR", 0, true},
		{"missing", status, "VmSwap", 0, true},
		{"not in kB", status, "Threads", 0, true},
		{"empty", "", "VmRSS", 0, true},
		{"smaps Rss", smaps, "Rss", 12288, false},
		{"smaps Anonymous, not AnonHugePages", smaps, "Anonymous", 8192, false},
		{"smaps Anon is no field", smaps, "Anon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKiB(tt.text, tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseKiB(%s) = %d, %v; want %d, error %v", tt.field, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestOutputToFile runs a real process with outputToFile: both its streams
// land in the file, its stderr is that file, and the pid stays the one
// camdtest started. A process on camdtest's pipe fails the same check.
func TestOutputToFile(t *testing.T) {
	dir := t.TempDir()
	script := []string{"-c", "echo to-stderr >&2; echo to-stdout; exec sleep 30"}
	tests := []struct {
		name   string
		toFile bool
	}{
		{"output to a file", true},
		{"output on the pipe", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("out-%d.log", i))
			o := camdtest.Options{Bin: "/bin/sh", Args: script}
			if tt.toFile {
				o = outputToFile(o, path)
			}
			s, err := launch("sh", o, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.kill()
			// Both lines are in the file either way, through the pipe
			// or not: wait for them.
			var got []byte
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if got, _ = os.ReadFile(path); strings.Count(string(got), "\n") == 2 {
					break
				}
			}
			if string(got) != "to-stderr\nto-stdout\n" {
				t.Fatalf("file holds %q", got)
			}
			err = stderrIsFile(s, path)
			if tt.toFile && err != nil {
				t.Errorf("stderrIsFile: %v", err)
			}
			if !tt.toFile && err == nil {
				t.Error("stderrIsFile passed a process whose stderr is a pipe")
			}
		})
	}
}
