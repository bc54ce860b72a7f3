// Package ackstore keeps the last acknowledgement durably in the ack
// module's data directory: Record returns only once the ack is on disk, so an acknowledged
// ack survives a power cut or kill -9.
package ackstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// FileName is the last ack's name inside the ack module's directory.
const FileName = "ack.json"

// Ack is one "seen" from a client.
type Ack struct {
	User    string    `json:"user"`
	Count   uint64    `json:"count"`
	AckedAt time.Time `json:"acked_at"`
}

// Store holds the last ack, in memory for reads and on disk for durability.
type Store struct {
	path  string
	group bool

	mu   sync.Mutex
	cond *sync.Cond // signalled when a write ends
	last *Ack       // the newest ack on disk

	// Group commit: concurrent Records share one write. Acks are numbered
	// in the order Record takes them; a write covers every ack up to the
	// number it started with, since the file keeps only the newest.
	seq     uint64 // the number of the newest ack handed to Record
	pending Ack    // that ack
	durable uint64 // acks up to this number are on disk (or superseded by one that is)
	failed  uint64 // acks up to this number failed to be written
	failErr error
	writing bool

	writeMu sync.Mutex // without grouping: one write at a time
}

// Options tune a Store.
type Options struct {
	// GroupCommit lets concurrent acks share one write and fsync. Off,
	// every ack pays its own; the benchmark compares the two.
	GroupCommit bool
}

// Open loads the last ack from dir, if there is one. A damaged file (only
// possible from outside camd, since writes are atomic) is moved aside and
// logged rather than stopping the cam.
func Open(dir datadir.Dir, log *slog.Logger, now func() time.Time, opt Options) (*Store, error) {
	s := &Store{path: dir.Join(FileName), group: opt.GroupCommit}
	s.cond = sync.NewCond(&s.mu)
	raw, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("open ack store %s: %w", s.path, err)
	}
	var a Ack
	err = json.Unmarshal(raw, &a)
	if err == nil && (a.User == "" || a.AckedAt.IsZero()) {
		err = errors.New("not a recorded ack: user or acked_at missing")
	}
	if err != nil {
		bad, mvErr := atomicfile.MoveAside(s.path, now())
		if mvErr != nil {
			return nil, fmt.Errorf("open ack store: %w", mvErr)
		}
		log.Error("last ack file was damaged; moved it aside", "path", s.path, "moved_to", bad, "err", err)
		return s, nil
	}
	s.last = &a
	return s, nil
}

// Record stores a as the last ack and returns once it is durable: on disk,
// or superseded on disk by a newer ack that arrived while it waited.
func (s *Store) Record(a Ack) error {
	if !s.group {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		if err := s.write(a); err != nil {
			return err
		}
		s.mu.Lock()
		s.last = &a
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	my := s.seq
	s.pending = a
	for {
		switch {
		case s.durable >= my:
			return nil
		case s.failed >= my:
			return s.failErr
		case s.writing:
			s.cond.Wait()
			continue
		}
		// Lead a write for everything handed in so far; the others wait.
		s.writing = true
		batch, upTo := s.pending, s.seq
		s.mu.Unlock()
		err := s.write(batch)
		s.mu.Lock()
		s.writing = false
		if err != nil {
			s.failed, s.failErr = upTo, err
		} else {
			s.durable, s.last = upTo, &batch
		}
		s.cond.Broadcast()
	}
}

func (s *Store) write(a Ack) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("record ack: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("record ack: %w", err)
	}
	return nil
}

// Last returns the last recorded ack, and false when there is none yet.
func (s *Store) Last() (Ack, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Ack{}, false
	}
	return *s.last, true
}
