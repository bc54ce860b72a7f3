// Package ackstore keeps the last acknowledgement durably in the data
// directory: Record returns only once the ack is on disk, so an acknowledged
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

// FileName is the last ack's name inside the data directory.
const FileName = "ack.json"

// Ack is one "seen" from a client.
type Ack struct {
	User    string    `json:"user"`
	Count   uint64    `json:"count"`
	AckedAt time.Time `json:"acked_at"`
}

// Store holds the last ack, in memory for reads and on disk for durability.
type Store struct {
	path string
	mu   sync.Mutex // serialises writes so the file and last stay in step
	last *Ack
}

// Open loads the last ack from dir, if there is one. A damaged file (only
// possible from outside camd, since writes are atomic) is moved aside and
// logged rather than stopping the cam.
func Open(dir datadir.Dir, log *slog.Logger, now func() time.Time) (*Store, error) {
	s := &Store{path: dir.Join(FileName)}
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

// Record stores a as the last ack and returns once it is durable.
func (s *Store) Record(a Ack) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("record ack: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := atomicfile.WriteFile(s.path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("record ack: %w", err)
	}
	s.last = &a
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
