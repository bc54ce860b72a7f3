package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// FileName is the owner password hash's name inside the data directory.
const FileName = "password.hash"

// NotBeforeFileName holds the time of the last password change.
const NotBeforeFileName = "password.notbefore"

// Owner is the only user name camd knows.
const Owner = "owner"

// Length limits for a new password. The upper one keeps a hostile request from
// feeding megabytes into the hash.
const (
	MinLength = 8    // characters
	MaxLength = 1024 // bytes
)

// ErrTooShort and ErrTooLong report a new password outside the length limits.
var (
	ErrTooShort = fmt.Errorf("password too short: use at least %d characters", MinLength)
	ErrTooLong  = fmt.Errorf("password too long: use at most %d bytes", MaxLength)
)

// Store keeps the owner password hash in the data directory.
//
// Check reads the file every time: a hash costs far more than a small read,
// and so a password set by `camd passwd` takes effect without a restart.
type Store struct {
	dir           datadir.Dir
	path          string
	notBeforePath string
	params        Params
	// slots bounds how many hashes run at once, because each takes
	// Params.Memory of RAM and a cam has little.
	slots chan struct{}

	nbMu    sync.Mutex // guards the cached not-before time
	nb      time.Time
	nbMtime time.Time
	nbSize  int64
	nbInfo  fs.FileInfo
}

// NewStore returns the store for dir, hashing new passwords with params and
// running at most concurrency checks at once.
func NewStore(dir datadir.Dir, params Params, concurrency int) *Store {
	return &Store{dir: dir, path: dir.Join(FileName), notBeforePath: dir.Join(NotBeforeFileName), params: params, slots: make(chan struct{}, max(concurrency, 1))}
}

// Path returns the hash file's path.
func (s *Store) Path() string { return s.path }

// Validate checks a new password against the length limits.
func Validate(password string) error {
	if len(password) > MaxLength {
		return ErrTooLong
	}
	if utf8.RuneCountInString(password) < MinLength {
		return ErrTooShort
	}
	return nil
}

// Set replaces the owner password. Owner tokens issued before notBefore
// are refused from then on; it is written first, so a crash in between
// only logs the owner out.
func (s *Store) Set(password string, notBefore time.Time) error {
	if err := Validate(password); err != nil {
		return err
	}
	h, err := Hash(password, s.params)
	if err != nil {
		return err
	}
	nb := notBefore.UTC().Truncate(time.Second).Format(time.RFC3339)
	if err := atomicfile.WriteFile(s.notBeforePath, []byte(nb+"\n"), 0o600); err != nil {
		return fmt.Errorf("set owner password: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, []byte(h+"\n"), 0o600); err != nil {
		return fmt.Errorf("set owner password: %w", err)
	}
	return nil
}

// NotBefore returns the time of the last password change: owner tokens
// issued earlier are no longer honoured. It is zero when the password was
// never changed. The file is re-read only when it changes, so a change made
// by `camd passwd` applies to a running server at once.
func (s *Store) NotBefore() (time.Time, error) {
	info, err := os.Stat(s.notBeforePath)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("owner password not-before: %w", err)
	}
	s.nbMu.Lock()
	defer s.nbMu.Unlock()
	if info.ModTime().Equal(s.nbMtime) && info.Size() == s.nbSize && os.SameFile(info, s.nbInfo) {
		return s.nb, nil
	}
	raw, err := os.ReadFile(s.notBeforePath)
	if err != nil {
		return time.Time{}, fmt.Errorf("owner password not-before: %w", err)
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(raw)))
	if err != nil {
		return time.Time{}, fmt.Errorf("owner password not-before %s: %w", s.notBeforePath, err)
	}
	s.nb, s.nbMtime, s.nbSize, s.nbInfo = t, info.ModTime(), info.Size(), info
	return t, nil
}

// EnsureInitial makes sure an owner password exists. On first start it
// generates a random one, stores its hash and returns it with created true, so
// the caller can show it once. If a hash exists already (or another process
// just created one), it returns created false.
func (s *Store) EnsureInitial() (initial string, created bool, err error) {
	// The lock keeps creation exclusive where atomicfile.Create cannot
	// rely on hard links (FAT).
	unlock, err := s.dir.Lock()
	if err != nil {
		return "", false, fmt.Errorf("create initial owner password: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(s.path); err == nil {
		return "", false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("owner password %s: %w", s.path, err)
	}
	pw := rand.Text() // 26 base32 characters, 128 bits
	h, err := Hash(pw, s.params)
	if err != nil {
		return "", false, err
	}
	if err := atomicfile.Create(s.path, []byte(h+"\n"), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("create initial owner password: %w", err)
	}
	return pw, true, nil
}

// Check reports whether user and password are the owner's. It does the full
// hash work whatever the user name, and compares both in constant time, so
// neither timing nor errors tell whether a user name exists.
func (s *Store) Check(ctx context.Context, user, password string) (bool, error) {
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("read owner password %s: %w", s.path, err)
	}
	h, err := Parse(string(raw))
	if err != nil {
		return false, fmt.Errorf("owner password %s: %w", s.path, err)
	}
	if len(password) > MaxLength {
		// No stored password is this long; hash a bounded prefix so the
		// answer costs the same as any other wrong password.
		password = password[:MaxLength] + "\x00"
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("check owner password: %w", ctx.Err())
	}
	passOK := h.Matches(password)
	<-s.slots
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(Owner)) == 1
	return userOK && passOK, nil
}
