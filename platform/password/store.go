package password

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// FileName is the owner password hash's name inside the data directory.
const FileName = "password.hash"

// ChangedFileName records the last password change.
const ChangedFileName = "password.changed"

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
	dir         datadir.Dir
	path        string
	changedPath string
	params      Params
	// slots bounds how many hashes run at once, because each takes
	// Params.Memory of RAM and a cam has little; queue bounds how many
	// run or wait, so a flood is refused at once instead of queueing
	// past the server's write timeout.
	slots    chan struct{}
	queue    chan struct{}
	slotWait time.Duration

	changes *changeWatch
	chMu    sync.Mutex // guards the cached last change
	ch      Change
	chStamp fileStamp // of the file ch was read from; zero before the first read

	recent recent
	hashes atomic.Int64 // hashes computed by Check, for tests
}

// RecentTTL is how long CheckRecent trusts a credential it has verified.
// A browser resends Basic credentials with every request, and a hash costs a
// cam a third of a second of CPU and 6 MiB; with this, clicking through the
// admin page costs one hash every few minutes. Past it the next request pays
// for a full check again, however busy the owner is.
const RecentTTL = 5 * time.Minute

// recent is the last credential CheckRecent verified, kept only as a keyed
// hash (HMAC-SHA256 under a key made at start) bound to the stored password
// hash, so any password change, `camd passwd` included, forgets it.
type recent struct {
	mu     sync.Mutex
	key    []byte
	digest []byte
	until  time.Time // on the monotonic clock: an NTP step changes nothing
}

func (r *recent) sum(stored []byte, user, password string) []byte {
	m := hmac.New(sha256.New, r.key)
	for _, part := range [][]byte{stored, []byte(user), []byte(password)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:]) // length-prefixed: no two inputs share an encoding
		m.Write(part)
	}
	return m.Sum(nil)
}

func (r *recent) has(digest []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.digest != nil && time.Now().Before(r.until) && hmac.Equal(r.digest, digest)
}

func (r *recent) remember(digest []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.digest, r.until = digest, time.Now().Add(RecentTTL)
}

func (r *recent) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.digest = nil
}

// ErrBusy refuses a check that found QueueDepth checks running or waiting,
// or that waited SlotWait for a hashing slot: the caller answers 503 with
// Retry-After rather than keep the client waiting.
var ErrBusy = errors.New("too many password checks in progress")

// ErrChanged refuses a check that overlapped a password change: the
// password may have been right a moment ago, and is not a guess to count.
var ErrChanged = errors.New("the owner password changed during the check")

// QueueDepth is how many checks may run or wait at once, per slot: with one
// slot and a cam's third of a second per hash, the last in the queue waits
// about 1.3 s.
const QueueDepth = 4

// SlotWait bounds the wait for a hashing slot. It is well below the server's
// 30 s write timeout, so a waiting client always gets an answer.
const SlotWait = 5 * time.Second

// NewStore returns the store for dir, hashing new passwords with params and
// running at most concurrency checks at once.
func NewStore(dir datadir.Dir, params Params, concurrency int) *Store {
	concurrency = max(concurrency, 1)
	s := &Store{
		dir: dir, path: dir.Join(FileName), changedPath: dir.Join(ChangedFileName), params: params,
		slots: make(chan struct{}, concurrency), queue: make(chan struct{}, concurrency*QueueDepth), slotWait: SlotWait,
		changes: newChangeWatch(dir.Path(), ChangedFileName, dir.Join(ChangedFileName)),
	}
	s.recent.key = make([]byte, sha256.Size)
	rand.Read(s.recent.key) // never fails (crypto/rand, Go 1.24+)
	return s
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

// Set replaces the owner password and records the change with a fresh
// version: owner tokens carry the version they were issued under, so every
// token from before the change is refused, whatever the clocks say. The
// change is written first, so a crash in between only logs the owner out.
// Both writes happen under the data directory's lock, which every check
// takes shared while it reads the two files, so no check pairs the old hash
// with the new version, in this process or another (camd passwd).
func (s *Store) Set(password string, at time.Time) error {
	if err := Validate(password); err != nil {
		return err
	}
	h, err := Hash(password, s.params)
	if err != nil {
		return err
	}
	s.recent.forget() // also done by the new hash; this makes it immediate
	ch := Change{At: at.UTC(), Version: rand.Text()}
	raw, err := json.Marshal(ch)
	if err != nil {
		return fmt.Errorf("set owner password: %w", err)
	}
	unlock, err := s.dir.Lock()
	if err != nil {
		return fmt.Errorf("set owner password: %w", err)
	}
	defer unlock()
	if err := atomicfile.WriteFile(s.changedPath, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("set owner password: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, []byte(h+"\n"), 0o600); err != nil {
		return fmt.Errorf("set owner password: %w", err)
	}
	return nil
}

// Change is the last password change.
type Change struct {
	At      time.Time `json:"at"`
	Version string    `json:"version"` // random; owner tokens carry it as pwv
}

// parseChange reads a password.changed file; false when it is damaged.
func parseChange(raw []byte) (Change, bool) {
	var ch Change
	if err := json.Unmarshal(raw, &ch); err != nil || ch.Version == "" {
		return Change{}, false
	}
	return ch, true
}

// Changed returns the last password change, zero when the password was
// never changed. The file is re-read only when it changes, so a change made
// by `camd passwd` applies to a running server on its next request.
func (s *Store) Changed() (Change, error) {
	stamp, exists, err := s.changes.stamp()
	if err != nil {
		return Change{}, fmt.Errorf("owner password change: %w", err)
	}
	if !exists {
		return Change{}, nil
	}
	s.chMu.Lock()
	defer s.chMu.Unlock()
	if s.ch.Version != "" && stamp.same(s.chStamp) {
		return s.ch, nil
	}
	raw, err := os.ReadFile(s.changedPath)
	if err != nil {
		return Change{}, fmt.Errorf("owner password change: %w", err)
	}
	ch, ok := parseChange(raw)
	if !ok {
		return Change{}, fmt.Errorf("owner password change %s: damaged", s.changedPath)
	}
	s.ch, s.chStamp = ch, stamp
	return ch, nil
}

// EnsureInitial makes sure an owner password exists. On first start it
// generates a random one, hands it to show, and only then stores its hash;
// it reports created true. A power cut between the two leaves no hash, and
// the next start makes and shows another password. Storing first would
// leave, after a cut, a password that works but that nobody has seen.
// If a hash exists already it returns created false and shows nothing.
func (s *Store) EnsureInitial(show func(password string) error) (created bool, err error) {
	// The lock keeps creation exclusive where atomicfile.Create cannot
	// rely on hard links (FAT).
	unlock, err := s.dir.Lock()
	if err != nil {
		return false, fmt.Errorf("create initial owner password: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(s.path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("owner password %s: %w", s.path, err)
	}
	pw := rand.Text() // 26 base32 characters, 128 bits
	h, err := Hash(pw, s.params)
	if err != nil {
		return false, err
	}
	if err := show(pw); err != nil {
		return false, fmt.Errorf("show the initial owner password: %w", err)
	}
	if err := atomicfile.Create(s.path, []byte(h+"\n"), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Only a writer that bypasses the lock (camd passwd) gets
			// here: the password just shown is not the stored one.
			return false, fmt.Errorf("create initial owner password: %s was set meanwhile; the password shown above is not valid: %w", s.path, err)
		}
		return false, fmt.Errorf("create initial owner password: %w", err)
	}
	return true, nil
}

// Check reports whether user and password are the owner's. It does the full
// hash work whatever the user name, and compares both in constant time, so
// neither timing nor errors tell whether a user name exists.
//
// On success it also returns the password version that the hash belongs
// to, which a token issued for this check must carry. The hash and the
// version are read together (see Set), and the version is read again after
// the hash: a check that overlapped a password change fails with
// ErrChanged, so nothing the old password obtains outlives the change.
func (s *Store) Check(ctx context.Context, user, password string) (ok bool, version string, err error) {
	raw, ch, err := s.snapshot()
	if err != nil {
		return false, "", err
	}
	if ok, err = s.check(ctx, raw, user, password); !ok || err != nil {
		return false, "", err
	}
	now, err := s.Changed()
	if err != nil {
		return false, "", err
	}
	if now.Version != ch.Version {
		return false, "", ErrChanged
	}
	return true, ch.Version, nil
}

// Recent reports whether user and password are a credential CheckRecent
// verified within RecentTTL for the stored hash. It never hashes, so a
// caller may ask it before spending a guess on the check.
func (s *Store) Recent(user, password string) (bool, error) {
	raw, err := s.read()
	if err != nil {
		return false, err
	}
	return s.recent.has(s.recent.sum(raw, user, password)), nil
}

// CheckRecent is Check for credentials a client resends with every request
// (HTTP Basic): a success is remembered for RecentTTL, and the same user and
// password are accepted again without hashing while the stored hash is the
// same. Failures are never remembered, so a guess always costs a full hash.
func (s *Store) CheckRecent(ctx context.Context, user, password string) (bool, error) {
	raw, err := s.read()
	if err != nil {
		return false, err
	}
	digest := s.recent.sum(raw, user, password)
	if s.recent.has(digest) {
		return true, nil
	}
	ok, err := s.check(ctx, raw, user, password)
	if !ok || err != nil {
		return false, err
	}
	// As in Check: a request whose hash overlapped a password change
	// must not act on the old password once the change has returned. The
	// shared lock waits out a Set between its two writes.
	now, _, err := s.snapshot()
	if err != nil {
		return false, err
	}
	if !bytes.Equal(now, raw) {
		return false, ErrChanged
	}
	s.recent.remember(digest)
	return true, nil
}

// snapshot reads the hash and the last change under the shared lock.
func (s *Store) snapshot() ([]byte, Change, error) {
	unlock, err := s.dir.RLock()
	if err != nil {
		return nil, Change{}, fmt.Errorf("read owner password: %w", err)
	}
	defer unlock()
	raw, err := s.read()
	if err != nil {
		return nil, Change{}, err
	}
	ch, err := s.Changed()
	if err != nil {
		return nil, Change{}, err
	}
	return raw, ch, nil
}

func (s *Store) read() ([]byte, error) {
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("read owner password %s: %w", s.path, err)
	}
	return raw, nil
}

func (s *Store) check(ctx context.Context, raw []byte, user, password string) (bool, error) {
	h, err := Parse(string(raw))
	if err != nil {
		return false, fmt.Errorf("owner password %s: %w", s.path, err)
	}
	if len(password) > MaxLength {
		// No stored password is this long; hash a bounded prefix so the
		// answer costs the same as any other wrong password.
		password = password[:MaxLength] + "\x00"
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return false, err
	}
	passOK := h.Matches(password)
	release()
	s.hashes.Add(1)
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(Owner)) == 1
	return userOK && passOK, nil
}

// acquire takes a place in the queue, or fails at once with ErrBusy when it
// is full, then waits up to slotWait for a hashing slot.
func (s *Store) acquire(ctx context.Context) (release func(), err error) {
	select {
	case s.queue <- struct{}{}:
	default:
		return nil, fmt.Errorf("check owner password: %d checks queued: %w", cap(s.queue), ErrBusy)
	}
	wait := time.NewTimer(s.slotWait)
	defer wait.Stop()
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots; <-s.queue }, nil
	case <-ctx.Done():
		<-s.queue
		return nil, fmt.Errorf("check owner password: %w", ctx.Err())
	case <-wait.C:
		<-s.queue
		return nil, fmt.Errorf("check owner password: waited %s for a slot: %w", s.slotWait, ErrBusy)
	}
}
