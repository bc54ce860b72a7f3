// Package clients keeps the named client credentials (long-lived bearer
// tokens for microcontrollers and cloud workers) in the data directory.
//
// Only each client's name, id, scopes and creation time are stored, never a
// token: a token is a JWT whose jti is the client's id, so deleting the
// client, or recreating it under the same name, revokes every token it had.
// The server re-reads the file whenever it changes, so `camd client revoke`
// run offline takes effect on the very next request.
package clients

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// File names in the data directory.
const (
	FileName      = "clients.json"
	UsageFileName = "clients.used.json"
)

// Errors of the store. Which scopes exist is not the store's to know: the
// auth service checks them against the modules' declarations.
var (
	ErrBadName  = errors.New("client name must be 1 to 64 letters, digits, '-', '_' or '.'")
	ErrNoScope  = errors.New("a client needs at least one scope")
	ErrExists   = errors.New("a client with that name exists")
	ErrNotFound = errors.New("no such client")
)

// Client is one stored credential.
type Client struct {
	Name      string    `json:"name"`
	ID        string    `json:"id"` // the jti of its tokens
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

// Usage is when and from where a client was last seen.
type Usage struct {
	At   time.Time `json:"at"`
	Addr string    `json:"addr"`
}

// Store holds the clients of one data directory.
type Store struct {
	dir       datadir.Dir
	path      string
	usagePath string

	mu      sync.Mutex
	clients map[string]Client
	stamp   stamp // of the file clients was read from
	usage   map[string]Usage
	dirty   bool // usage changed since it was last written
}

// stamp identifies one version of a file: an atomic rewrite changes the
// inode, an edit in place the size or mtime.
type stamp struct {
	ino, size int64
	mtime     time.Time
}

// Open reads the clients kept in dir.
func Open(dir datadir.Dir) (*Store, error) {
	s := &Store{dir: dir, path: dir.Join(FileName), usagePath: dir.Join(UsageFileName), usage: map[string]Usage{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(true); err != nil {
		return nil, err
	}
	if raw, err := os.ReadFile(s.usagePath); err == nil {
		// Usage is a convenience: a damaged file only loses "last used".
		_ = json.Unmarshal(raw, &s.usage)
	}
	return s, nil
}

// ValidateName checks a client name: 1 to 64 ASCII letters, digits, '-',
// '_' or '.'. A loop, not a regexp: compiling one at start-up was the
// largest package initialisation camd had (0.2–0.4 ms of a 5 ms start).
func ValidateName(name string) error {
	if name == "" || len(name) > 64 {
		return ErrBadName
	}
	for i := range len(name) {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return ErrBadName
		}
	}
	return nil
}

// Add creates a client with a fresh id, granted scopes (sorted, each once).
func (s *Store) Add(name string, scopes []string, now time.Time) (Client, error) {
	if err := ValidateName(name); err != nil {
		return Client{}, err
	}
	if len(scopes) == 0 {
		return Client{}, ErrNoScope
	}
	scopes = slices.Compact(slices.Sorted(slices.Values(scopes)))
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Client{}, fmt.Errorf("client id: %w", err)
	}
	c := Client{Name: name, ID: base64.RawURLEncoding.EncodeToString(id), Scopes: scopes, CreatedAt: now.UTC()}
	err := s.modify(func(m map[string]Client) error {
		if _, dup := m[name]; dup {
			return ErrExists
		}
		m[name] = c
		return nil
	})
	return c, err
}

// Remove deletes a client, revoking its tokens.
func (s *Store) Remove(name string) error {
	return s.modify(func(m map[string]Client) error {
		if _, ok := m[name]; !ok {
			return ErrNotFound
		}
		delete(m, name)
		return nil
	})
}

// modify applies f to the clients on disk under the data-dir lock, so the
// server and an offline `camd client` never lose each other's changes.
func (s *Store) modify(f func(map[string]Client) error) error {
	unlock, err := s.dir.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(true); err != nil {
		return err
	}
	next := make(map[string]Client, len(s.clients)+1)
	for k, v := range s.clients {
		next[k] = v
	}
	if err := f(next); err != nil {
		return err
	}
	list := make([]Client, 0, len(next))
	for _, c := range next {
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b Client) int { return strings.Compare(a.Name, b.Name) })
	raw, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("save clients: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("save clients: %w", err)
	}
	s.clients = next
	s.stamp = stamp{} // force a re-stat next time
	return nil
}

// reloadLocked re-reads the file when it changed since the last read (or
// always, with force).
func (s *Store) reloadLocked(force bool) error {
	info, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.clients, s.stamp = map[string]Client{}, stamp{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read clients %s: %w", s.path, err)
	}
	st := stamp{size: info.Size(), mtime: info.ModTime()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	if !force && st == s.stamp {
		return nil
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("read clients %s: %w", s.path, err)
	}
	var list []Client
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("read clients %s: %w", s.path, err)
	}
	m := make(map[string]Client, len(list))
	for _, c := range list {
		m[c.Name] = c
	}
	s.clients, s.stamp = m, st
	return nil
}

// Valid reports whether a client of that name exists with that id. It is on
// every client request's path: one stat, and a read only after a change.
func (s *Store) Valid(name, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(false); err != nil {
		// Fail closed: an unreadable file revokes rather than admits.
		return false
	}
	c, ok := s.clients[name]
	return ok && c.ID == id
}

// Listed is a client as the admin API shows it: never a token, never its id.
type Listed struct {
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  *Usage    `json:"last_used"`
}

// List returns every client, sorted by name.
func (s *Store) List() ([]Listed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(false); err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(s.clients))
	for _, c := range s.clients {
		l := Listed{Name: c.Name, Scopes: c.Scopes, CreatedAt: c.CreatedAt}
		if u, ok := s.usage[c.Name]; ok {
			l.LastUsed = &u
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Listed) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Used records a client's request in memory; SaveUsage writes it, rarely.
func (s *Store) Used(name, addr string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage[name] = Usage{At: at.UTC(), Addr: addr}
	s.dirty = true
}

// SaveUsage writes "last used" if it changed, dropping clients that no
// longer exist.
func (s *Store) SaveUsage() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	keep := make(map[string]Usage, len(s.usage))
	for name, u := range s.usage {
		if _, ok := s.clients[name]; ok {
			keep[name] = u
		}
	}
	s.usage, s.dirty = keep, false
	raw, err := json.Marshal(keep)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save client usage: %w", err)
	}
	if err := atomicfile.WriteFile(s.usagePath, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("save client usage: %w", err)
	}
	return nil
}

// UsageEvery is how often "last used" is written at most: cam flash wears.
const UsageEvery = 10 * time.Minute

// Run writes "last used" every UsageEvery and once more when ctx ends.
func (s *Store) Run(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(UsageEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.SaveUsage(); err != nil {
				log.Error("could not save client usage", "err", err)
			}
			return
		case <-t.C:
			if err := s.SaveUsage(); err != nil {
				log.Error("could not save client usage", "err", err)
			}
		}
	}
}

// CheckFile inspects clients.json at start, so that a file damaged while camd
// was stopped is reported then, naming it, rather than refusing the start
// with a parse error. A damaged file (empty, cut short, not a list of
// clients, or holding a client without a valid name or an id) is moved aside
// as clients.json.bad-<unix time>, an error is logged, and camd starts as on
// first boot with no clients: every client token is refused until the owner
// adds the clients again or repairs the file and moves it back (the server
// re-reads it on the next request). That revokes rather than admits, which
// is safe, and keeps the owner's login and admin page working to recover
// from it. A file that cannot be read at all is an error. now dates the name
// of the file moved aside.
func CheckFile(dir datadir.Dir, log *slog.Logger, now func() time.Time) error {
	unlock, err := dir.Lock()
	if err != nil {
		return fmt.Errorf("check clients: %w", err)
	}
	defer unlock()
	path := dir.Join(FileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read clients %s: %w", path, err)
	}
	why := damage(raw)
	if why == nil {
		return nil
	}
	bad, err := atomicfile.MoveAside(path, now())
	if err != nil {
		return fmt.Errorf("move aside the damaged clients file %s: %w", path, err)
	}
	log.Error("clients file was damaged; moved it aside and started with no clients: every client token is refused until the clients are added again, or the file is repaired and moved back",
		"path", path, "moved_to", bad, "err", why)
	return nil
}

// damage says what is wrong with the contents of a clients file, or nil.
func damage(raw []byte) error {
	var list []Client
	if err := json.Unmarshal(raw, &list); err != nil {
		return err
	}
	for i, c := range list {
		if ValidateName(c.Name) != nil || c.ID == "" {
			return fmt.Errorf("client %d: no valid name and id", i)
		}
	}
	return nil
}
