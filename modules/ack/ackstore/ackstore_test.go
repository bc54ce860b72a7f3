package ackstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"camd/modules/ack/ackstore"
	"camd/platform/datadir"
)

var fixedNow = time.Unix(1700000000, 0)

func now() time.Time { return fixedNow }

const movedName = "ack.json.bad-1700000000"

func newDir(t *testing.T) datadir.Dir {
	t.Helper()
	d, err := datadir.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func open(t *testing.T, d datadir.Dir) (*ackstore.Store, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	s, err := ackstore.Open(d, slog.New(slog.NewTextHandler(&buf, nil)), now, ackstore.Options{GroupCommit: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, &buf
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func sameAck(a, b ackstore.Ack) bool {
	return a.User == b.User && a.Count == b.Count && a.AckedAt.Equal(b.AckedAt)
}

func TestOpenEmpty(t *testing.T) {
	d := newDir(t)
	s, buf := open(t, d)
	if a, ok := s.Last(); ok || a != (ackstore.Ack{}) {
		t.Errorf("Last() = %+v, %v on an empty directory; want zero, false", a, ok)
	}
	if got := names(t, d.Path()); len(got) != 0 {
		t.Errorf("Open created files: %q", got)
	}
	if buf.Len() != 0 {
		t.Errorf("Open logged on an empty directory:\n%s", buf)
	}
}

func TestRecordPersists(t *testing.T) {
	cest := time.FixedZone("CEST", 2*60*60)
	tests := []struct {
		name string
		ack  ackstore.Ack
	}{
		{"utc", ackstore.Ack{User: "owner", Count: 1, AckedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}},
		{"nanoseconds", ackstore.Ack{User: "owner", Count: 42, AckedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)}},
		{"other zone", ackstore.Ack{User: "owner", Count: 7, AckedAt: time.Date(2024, 5, 6, 9, 8, 9, 5, cest)}},
		{"zero count", ackstore.Ack{User: "owner", Count: 0, AckedAt: fixedNow}},
		{"max safe integer", ackstore.Ack{User: "owner", Count: 1<<53 - 1, AckedAt: fixedNow}},
		{"max uint64", ackstore.Ack{User: "owner", Count: math.MaxUint64, AckedAt: fixedNow}},
		{"unicode user", ackstore.Ack{User: "öwner \"quoted\"\n", Count: 3, AckedAt: fixedNow}},
		{"monotonic reading", ackstore.Ack{User: "owner", Count: 9, AckedAt: time.Now()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			s, _ := open(t, d)
			if err := s.Record(tt.ack); err != nil {
				t.Fatalf("Record: %v", err)
			}
			got, ok := s.Last()
			if !ok || !sameAck(got, tt.ack) {
				t.Errorf("Last() = %+v, %v; want %+v", got, ok, tt.ack)
			}

			// As after a restart.
			reopened, buf := open(t, d)
			got, ok = reopened.Last()
			if !ok || !sameAck(got, tt.ack) {
				t.Errorf("after reopening Last() = %+v, %v; want %+v", got, ok, tt.ack)
			}
			if buf.Len() != 0 {
				t.Errorf("reopening logged:\n%s", buf)
			}

			path := d.Join(ackstore.FileName)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", path, info.Mode().Perm())
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(raw) || !bytes.HasSuffix(raw, []byte("}\n")) {
				t.Errorf("%s holds %q, want one JSON object and a newline", path, raw)
			}
			if got := names(t, d.Path()); !slices.Equal(got, []string{ackstore.FileName}) {
				t.Errorf("data dir holds %q, want only %s", got, ackstore.FileName)
			}
		})
	}
}

func TestRecordReplaces(t *testing.T) {
	d := newDir(t)
	s, _ := open(t, d)
	first := ackstore.Ack{User: "owner", Count: 1, AckedAt: fixedNow}
	second := ackstore.Ack{User: "owner", Count: 2, AckedAt: fixedNow.Add(time.Minute)}
	for _, a := range []ackstore.Ack{first, second} {
		if err := s.Record(a); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Last(); !sameAck(got, second) {
		t.Errorf("Last() = %+v, want %+v", got, second)
	}
	reopened, _ := open(t, d)
	if got, _ := reopened.Last(); !sameAck(got, second) {
		t.Errorf("after reopening Last() = %+v, want %+v", got, second)
	}
}

func TestRecordConcurrent(t *testing.T) {
	const n = 16
	d := newDir(t)
	s, _ := open(t, d)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Record(ackstore.Ack{User: fmt.Sprint("user", i), Count: uint64(i), AckedAt: fixedNow})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	// Whichever won, memory and disk agree.
	mem, ok := s.Last()
	if !ok {
		t.Fatal("no ack after concurrent records")
	}
	reopened, _ := open(t, d)
	disk, _ := reopened.Last()
	if !sameAck(mem, disk) {
		t.Errorf("in memory %+v, on disk %+v", mem, disk)
	}
	if mem.User != fmt.Sprint("user", mem.Count) {
		t.Errorf("torn ack %+v", mem)
	}
	if got := names(t, d.Path()); !slices.Equal(got, []string{ackstore.FileName}) {
		t.Errorf("data dir holds %q, want only %s", got, ackstore.FileName)
	}
}

func TestOpenDamaged(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"garbage bytes", []byte{0x00, 0xff, 0x13, 0x37, 0xfe, '{'}},
		{"empty", []byte{}},
		{"truncated", []byte(`{"user":"owner","count":`)},
		{"wrong type", []byte(`{"user":"owner","count":"three","acked_at":"2024-01-01T00:00:00Z"}`)},
		{"negative count", []byte(`{"user":"owner","count":-1,"acked_at":"2024-01-01T00:00:00Z"}`)},
		{"bad time", []byte(`{"user":"owner","count":1,"acked_at":"yesterday"}`)},
		{"array", []byte(`[]`)},
		{"null", []byte(`null`)},
		{"empty object", []byte(`{}`)},
		{"no user", []byte(`{"count":1,"acked_at":"2024-01-01T00:00:00Z"}`)},
		{"no time", []byte(`{"user":"owner","count":1}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			path := d.Join(ackstore.FileName)
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}

			s, buf := open(t, d)
			if a, ok := s.Last(); ok {
				t.Errorf("Last() = %+v, true from a damaged file", a)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("damaged %s still in place (err %v)", path, err)
			}
			moved, err := os.ReadFile(d.Join(movedName))
			if err != nil {
				t.Fatalf("damaged file not moved aside: %v", err)
			}
			if !bytes.Equal(moved, tt.content) {
				t.Errorf("moved file holds %q, want %q", moved, tt.content)
			}
			log := buf.String()
			if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "moved_to="+d.Join(movedName)) {
				t.Errorf("want an ERROR line naming %s, log:\n%s", movedName, log)
			}

			// The store works afterwards.
			a := ackstore.Ack{User: "owner", Count: 5, AckedAt: fixedNow}
			if err := s.Record(a); err != nil {
				t.Fatal(err)
			}
			reopened, _ := open(t, d)
			if got, ok := reopened.Last(); !ok || !sameAck(got, a) {
				t.Errorf("after repair Last() = %+v, %v; want %+v", got, ok, a)
			}
		})
	}
}

func TestOpenError(t *testing.T) {
	d := newDir(t)
	path := d.Join(ackstore.FileName)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s, err := ackstore.Open(d, slog.New(slog.NewTextHandler(&buf, nil)), now, ackstore.Options{GroupCommit: true})
	if err == nil {
		t.Fatalf("Open succeeded with %s a directory: %+v", path, s)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if _, err := os.Stat(d.Join(movedName)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("an unreadable (not damaged) file was moved aside")
	}
}

func TestRecordError(t *testing.T) {
	d := newDir(t)
	s, _ := open(t, d)
	first := ackstore.Ack{User: "owner", Count: 1, AckedAt: fixedNow}
	if err := s.Record(first); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(d.Path()); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ackstore.Ack{User: "owner", Count: 2, AckedAt: fixedNow}); err == nil {
		t.Fatal("Record succeeded without a data directory")
	}
	// An ack that is not durable is not reported as the last one.
	if got, ok := s.Last(); !ok || !sameAck(got, first) {
		t.Errorf("Last() = %+v, %v after a failed Record; want %+v", got, ok, first)
	}
}

func TestRecordUnencodable(t *testing.T) {
	d := newDir(t)
	s, _ := open(t, d)
	// encoding/json refuses years outside 0-9999.
	bad := ackstore.Ack{User: "owner", Count: 1, AckedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Record(bad); err == nil {
		t.Fatal("Record of an unencodable time succeeded")
	}
	if a, ok := s.Last(); ok {
		t.Errorf("Last() = %+v, true after a refused Record", a)
	}
	if got := names(t, d.Path()); len(got) != 0 {
		t.Errorf("a refused Record left files: %q", got)
	}
}

// TestGroupCommit: concurrent acks, with grouping on and off, each return
// only once durable; the file holds the newest, and every writer saw nil.
func TestGroupCommit(t *testing.T) {
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprintf("group %v", group), func(t *testing.T) {
			d := newDir(t)
			s, err := ackstore.Open(d, slog.New(slog.DiscardHandler), time.Now, ackstore.Options{GroupCommit: group})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					for i := range 20 {
						if err := s.Record(ackstore.Ack{User: "owner", Count: uint64(w*100 + i), AckedAt: time.Now()}); err != nil {
							t.Errorf("Record: %v", err)
						}
					}
				})
			}
			wg.Wait()
			last, ok := s.Last()
			if !ok {
				t.Fatal("no last ack")
			}
			reopened, err := ackstore.Open(d, slog.New(slog.DiscardHandler), time.Now, ackstore.Options{GroupCommit: group})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := reopened.Last(); got.Count != last.Count || !got.AckedAt.Equal(last.AckedAt) {
				t.Errorf("on disk %+v, in memory %+v", got, last)
			}
		})
	}
}

// BenchmarkRecord: 16 concurrent writers, grouped and one fsync each.
func BenchmarkRecord(b *testing.B) {
	for _, group := range []bool{true, false} {
		b.Run(fmt.Sprintf("group=%v", group), func(b *testing.B) {
			d, err := datadir.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			s, err := ackstore.Open(d, slog.New(slog.DiscardHandler), time.Now, ackstore.Options{GroupCommit: group})
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 writers here
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Record(ackstore.Ack{User: "owner", Count: 1, AckedAt: time.Now()}); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
