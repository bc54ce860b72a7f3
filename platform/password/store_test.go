package password

// An internal test, so that TestCheckContext can hold the store's only
// hashing slot the way a slow concurrent check would.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"camd/platform/datadir"
)

var cheapParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newTestStore(t *testing.T, concurrency int) (*Store, datadir.Dir) {
	t.Helper()
	d, err := datadir.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(d, cheapParams, concurrency), d
}

func mustSet(t *testing.T, s *Store, pw string) {
	t.Helper()
	if err := s.Set(pw, time.Now()); err != nil {
		t.Fatalf("Set(%q): %v", pw, err)
	}
}

// guard bounds a check that should never wait: a leaked hashing slot turns
// into a clear failure instead of a hung test. It is not a timing assertion.
const guard = 10 * time.Second

func mustCheck(t *testing.T, s *Store, user, pw string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ok, _, err := s.Check(ctx, user, pw)
	if err != nil {
		t.Fatalf("Check(%q, %q): %v", user, pw, err)
	}
	return ok
}

func TestNewStore(t *testing.T) {
	tests := []struct {
		concurrency, wantSlots int
	}{
		{-3, 1}, {0, 1}, {1, 1}, {4, 4},
	}
	for _, tt := range tests {
		s, d := newTestStore(t, tt.concurrency)
		if cap(s.slots) != tt.wantSlots {
			t.Errorf("NewStore(concurrency %d) has %d slots, want %d", tt.concurrency, cap(s.slots), tt.wantSlots)
		}
		if s.Path() != d.Join(FileName) {
			t.Errorf("Path() = %q, want %q", s.Path(), d.Join(FileName))
		}
	}
}

// ensureInitial returns the password EnsureInitial shows, if any.
func ensureInitial(s *Store) (pw string, created bool, err error) {
	created, err = s.EnsureInitial(func(p string) error { pw = p; return nil })
	return pw, created, err
}

// TestEnsureInitialShowsBeforeStoring: the password is shown before its hash
// exists, and a failure to show it stores nothing, so a cut between the two
// never leaves a working password nobody saw.
func TestEnsureInitialShowsBeforeStoring(t *testing.T) {
	for _, tc := range []struct {
		name    string
		showErr error
	}{
		{"shown", nil},
		{"show fails", errors.New("stderr closed")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t, 1)
			var shown string
			created, err := s.EnsureInitial(func(pw string) error {
				if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the hash exists before the password is shown: %v", err)
				}
				shown = pw
				return tc.showErr
			})
			_, statErr := os.Stat(s.Path())
			if tc.showErr != nil {
				if err == nil || created || !errors.Is(statErr, fs.ErrNotExist) {
					t.Errorf("EnsureInitial = %v, %v, hash stat %v; want an error, false and no hash", created, err, statErr)
				}
				return
			}
			if err != nil || !created || !mustCheck(t, s, Owner, shown) {
				t.Errorf("EnsureInitial = %v, %v; the shown password must be the stored one", created, err)
			}
		})
	}
}

func TestEnsureInitial(t *testing.T) {
	s, _ := newTestStore(t, 1)

	pw, created, err := ensureInitial(s)
	if err != nil {
		t.Fatalf("EnsureInitial: %v", err)
	}
	if !created {
		t.Fatal("created = false on an empty data directory")
	}
	if len(pw) < 16 {
		t.Errorf("initial password %q is shorter than 16 characters", pw)
	}
	if err := Validate(pw); err != nil {
		t.Errorf("initial password fails Validate: %v", err)
	}
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), pw) {
		t.Error("hash file contains the password in clear")
	}
	if _, err := Parse(string(raw)); err != nil {
		t.Errorf("hash file does not parse: %v", err)
	}
	info, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("hash file mode %v, want 0600", info.Mode().Perm())
	}
	if !mustCheck(t, s, Owner, pw) {
		t.Error("the initial password does not check")
	}

	pw2, created2, err := ensureInitial(s)
	if err != nil || created2 || pw2 != "" {
		t.Errorf("second EnsureInitial = %q, %v, %v; want \"\", false, nil", pw2, created2, err)
	}
	after, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(raw) {
		t.Error("second EnsureInitial changed the hash file")
	}
	if !mustCheck(t, s, Owner, pw) {
		t.Error("initial password stopped checking after the second EnsureInitial")
	}
}

func TestEnsureInitialKeepsSetPassword(t *testing.T) {
	s, _ := newTestStore(t, 1)
	mustSet(t, s, "chosen by the owner")
	pw, created, err := ensureInitial(s)
	if err != nil || created || pw != "" {
		t.Fatalf("EnsureInitial = %q, %v, %v; want \"\", false, nil", pw, created, err)
	}
	if !mustCheck(t, s, Owner, "chosen by the owner") {
		t.Error("EnsureInitial replaced a password that was set")
	}
}

func TestEnsureInitialConcurrent(t *testing.T) {
	const n = 8
	base := filepath.Join(t.TempDir(), "data")
	type result struct {
		pw      string
		created bool
		err     error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			d, err := datadir.Open(base)
			if err != nil {
				results[i].err = err
				return
			}
			// A store each, as separate processes starting at once would have.
			s := NewStore(d, cheapParams, 1)
			results[i].pw, results[i].created, results[i].err = ensureInitial(s)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if r.created {
			if winner >= 0 {
				t.Errorf("callers %d and %d both created a password", winner, i)
			}
			winner = i
		} else if r.pw != "" {
			t.Errorf("caller %d returned password %q with created false", i, r.pw)
		}
	}
	if winner < 0 {
		t.Fatal("no caller created the password")
	}
	d, err := datadir.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(d, cheapParams, 1)
	if !mustCheck(t, s, Owner, results[winner].pw) {
		t.Error("the password reported as created does not check")
	}
}

func TestEnsureInitialError(t *testing.T) {
	s, d := newTestStore(t, 1)
	if err := os.RemoveAll(d.Path()); err != nil {
		t.Fatal(err)
	}
	pw, created, err := ensureInitial(s)
	if err == nil {
		t.Fatal("EnsureInitial succeeded without a data directory")
	}
	if created || pw != "" {
		t.Errorf("EnsureInitial returned %q, created %v with an error", pw, created)
	}
}

func TestCheck(t *testing.T) {
	const pw = "correct horse battery"
	s, _ := newTestStore(t, 2)
	mustSet(t, s, pw)

	tests := []struct {
		name, user, pw string
		want           bool
	}{
		{"right", Owner, pw, true},
		{"wrong password", Owner, "correct horse battery!", false},
		{"password case", Owner, strings.ToUpper(pw), false},
		{"password trailing newline", Owner, pw + "\n", false},
		{"empty password", Owner, "", false},
		{"wrong user right password", "admin", pw, false},
		{"user capitalised", "Owner", pw, false},
		{"user trailing space", "owner ", pw, false},
		{"user leading space", " owner", pw, false},
		{"user with NUL", "owner\x00", pw, false},
		{"empty user", "", pw, false},
		{"password over MaxLength", Owner, pw + strings.Repeat("x", MaxLength), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustCheck(t, s, tt.user, tt.pw); got != tt.want {
				t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.pw, got, tt.want)
			}
		})
	}
	if len(s.slots) != 0 {
		t.Errorf("%d hashing slots still held after the checks", len(s.slots))
	}
}

func TestCheckLongPasswords(t *testing.T) {
	// A stored password of exactly MaxLength bytes: a presented one that is
	// longer but shares those bytes is cut for hashing and must still fail.
	longest := strings.Repeat("a", MaxLength)
	s, _ := newTestStore(t, 1)
	mustSet(t, s, longest)

	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"exactly MaxLength", longest, true},
		{"one byte over", longest + "b", false},
		{"one NUL over", longest + "\x00", false},
		{"far over", longest + strings.Repeat("b", 1<<20), false},
		{"one byte short", longest[1:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustCheck(t, s, Owner, tt.pw); got != tt.want {
				t.Errorf("Check(%d bytes) = %v, want %v", len(tt.pw), got, tt.want)
			}
		})
	}
}

func TestSetTakesEffectWithoutRestart(t *testing.T) {
	s, d := newTestStore(t, 1)
	mustSet(t, s, "first password")
	if !mustCheck(t, s, Owner, "first password") {
		t.Fatal("first password does not check")
	}

	mustSet(t, s, "second password")
	if mustCheck(t, s, Owner, "first password") {
		t.Error("old password still checks after Set")
	}
	if !mustCheck(t, s, Owner, "second password") {
		t.Error("new password does not check after Set")
	}

	// As `camd passwd` does from another process: a separate store.
	other := NewStore(d, cheapParams, 1)
	mustSet(t, other, "third password")
	if !mustCheck(t, s, Owner, "third password") {
		t.Error("a running store does not see a password set by another")
	}
	if mustCheck(t, s, Owner, "second password") {
		t.Error("a running store still accepts the replaced password")
	}
	info, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("hash file mode %v after Set, want 0600", info.Mode().Perm())
	}
}

func TestSetRejectsInvalid(t *testing.T) {
	s, _ := newTestStore(t, 1)
	mustSet(t, s, "good password")
	tests := []struct {
		pw   string
		want error
	}{
		{"short", ErrTooShort},
		{strings.Repeat("x", MaxLength+1), ErrTooLong},
	}
	for _, tt := range tests {
		if err := s.Set(tt.pw, time.Now()); !errors.Is(err, tt.want) {
			t.Errorf("Set(%d bytes) = %v, want %v", len(tt.pw), err, tt.want)
		}
	}
	if !mustCheck(t, s, Owner, "good password") {
		t.Error("a refused Set changed the password")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"empty", "", ErrTooShort},
		{"7 chars", "1234567", ErrTooShort},
		{"8 chars", "12345678", nil},
		{"8 × é", strings.Repeat("é", 8), nil},           // 16 bytes, 8 characters
		{"7 × é", strings.Repeat("é", 7), ErrTooShort},   // 14 bytes but 7 characters
		{"4 emoji", strings.Repeat("🔑", 4), ErrTooShort}, // 16 bytes, 4 characters
		{"8 emoji", strings.Repeat("🔑", 8), nil},
		{"MaxLength bytes", strings.Repeat("x", MaxLength), nil},
		{"MaxLength+1 bytes", strings.Repeat("x", MaxLength+1), ErrTooLong},
		{"over MaxLength bytes in fewer characters", strings.Repeat("é", MaxLength/2+1), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.pw); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Validate(%d bytes) = %v, want %v", len(tt.pw), err, tt.want)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		isDir   bool
		want    error
	}{
		{name: "missing file", want: fs.ErrNotExist},
		{name: "empty file", content: ptr(""), want: ErrBadHash},
		{name: "garbage", content: ptr("not a hash\n"), want: ErrBadHash},
		{name: "argon2i hash", content: ptr("$argon2i$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\n"), want: ErrBadHash},
		{name: "costly parameters", content: ptr("$argon2id$v=19$m=999999999,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\n"), want: ErrBadHash},
		{name: "file is a directory", isDir: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, 1)
			switch {
			case tt.isDir:
				if err := os.Mkdir(s.Path(), 0o700); err != nil {
					t.Fatal(err)
				}
			case tt.content != nil:
				if err := os.WriteFile(s.Path(), []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ok, _, err := s.Check(context.Background(), Owner, "whatever password")
			if err == nil {
				t.Fatal("Check succeeded, want an error")
			}
			if ok {
				t.Error("Check = true with an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Check error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), s.Path()) {
				t.Errorf("error %q does not name %s", err, s.Path())
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestCheckContext(t *testing.T) {
	const pw = "correct horse battery"
	s, _ := newTestStore(t, 1)
	mustSet(t, s, pw)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()

	tests := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline passed", expired, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.slots <- struct{}{} // another check holds the only slot
			type result struct {
				ok  bool
				err error
			}
			done := make(chan result, 1)
			go func() {
				ok, _, err := s.Check(tt.ctx, Owner, pw)
				done <- result{ok, err}
			}()
			var r result
			select {
			case r = <-done:
				<-s.slots
			case <-time.After(guard):
				<-s.slots // let the stuck check finish
				t.Fatal("Check kept waiting for a slot after its context ended")
			}
			ok, err := r.ok, r.err
			if !errors.Is(err, tt.want) {
				t.Errorf("Check error = %v, want %v", err, tt.want)
			}
			if ok {
				t.Error("Check = true for a context that ended while waiting")
			}
			if len(s.slots) != 0 {
				t.Error("a refused check left a slot taken")
			}
		})
	}

	// Waiting for a slot, then checking once it is free.
	s.slots <- struct{}{}
	done := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		ok, _, err := s.Check(ctx, Owner, pw)
		if err != nil {
			t.Error(err)
		}
		done <- ok
	}()
	select {
	case <-done:
		t.Fatal("Check ran while the only slot was held")
	default:
	}
	<-s.slots
	if ok := <-done; !ok {
		t.Error("Check waiting for a slot returned false for the right password")
	}
	if len(s.slots) != 0 {
		t.Error("slot not released after the check")
	}
}

// TestCheckRecent: a verified Basic credential is trusted again without a
// hash until RecentTTL passes or the password changes in any way; failures
// and other credentials always pay for a hash; Check never uses the memory.
func TestCheckRecent(t *testing.T) {
	const pw = "correct horse battery"
	type step struct {
		do         string // "recent", "check", "expire", "set" (this store), "passwd" (another store)
		user, pw   string
		want       bool
		wantHashes int64 // hashes computed by this step
	}
	recent := func(user, pw string, want bool, hashes int64) step { return step{"recent", user, pw, want, hashes} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"success is remembered", []step{
			recent(Owner, pw, true, 1), recent(Owner, pw, true, 0), recent(Owner, pw, true, 0)}},
		{"failures are not", []step{
			recent(Owner, "guess one", false, 1), recent(Owner, "guess one", false, 1)}},
		{"another password after a success", []step{
			recent(Owner, pw, true, 1), recent(Owner, pw+"!", false, 1), recent(Owner, pw, true, 0)}},
		{"another user with the remembered password", []step{
			recent(Owner, pw, true, 1), recent("admin", pw, false, 1)}},
		{"expired", []step{
			recent(Owner, pw, true, 1), {do: "expire"}, recent(Owner, pw, true, 1), recent(Owner, pw, true, 0)}},
		{"Check always hashes", []step{
			recent(Owner, pw, true, 1), {"check", Owner, pw, true, 1}}},
		{"password set here", []step{
			recent(Owner, pw, true, 1), {do: "set", pw: "new password"}, recent(Owner, pw, false, 1), recent(Owner, "new password", true, 1)}},
		// camd passwd from another process: only the stored hash changes.
		{"password set by another process", []step{
			recent(Owner, pw, true, 1), {do: "passwd", pw: "new password"}, recent(Owner, pw, false, 1), recent(Owner, "new password", true, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newTestStore(t, 1)
			mustSet(t, s, pw)
			for i, st := range tc.steps {
				before := s.hashes.Load()
				var ok bool
				var err error
				switch st.do {
				case "recent":
					ok, err = s.CheckRecent(context.Background(), st.user, st.pw)
				case "check":
					ok, _, err = s.Check(context.Background(), st.user, st.pw)
				case "expire":
					s.recent.mu.Lock()
					s.recent.until = time.Now().Add(-time.Nanosecond)
					s.recent.mu.Unlock()
					continue
				case "set":
					mustSet(t, s, st.pw)
					continue
				case "passwd":
					mustSet(t, NewStore(d, cheapParams, 1), st.pw)
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if ok != st.want || s.hashes.Load()-before != st.wantHashes {
					t.Errorf("step %d (%s %q): ok %v with %d hashes, want %v with %d",
						i, st.do, st.pw, ok, s.hashes.Load()-before, st.want, st.wantHashes)
				}
			}
		})
	}
}

// TestCheckQueueBound: with the queue full a check is refused at once with
// ErrBusy, and one that waits too long for a slot is refused at its
// deadline; neither leaves a place taken.
func TestCheckQueueBound(t *testing.T) {
	const pw = "correct horse battery"
	s, _ := newTestStore(t, 1)
	mustSet(t, s, pw)
	s.slotWait = 50 * time.Millisecond

	s.slots <- struct{}{} // a long check holds the only slot
	for range cap(s.queue) - 1 {
		s.queue <- struct{}{} // and the queue is one short of full
	}
	t.Run("waits its deadline", func(t *testing.T) {
		begin := time.Now()
		ok, _, err := s.Check(context.Background(), Owner, pw)
		if !errors.Is(err, ErrBusy) || ok {
			t.Fatalf("Check = %v, %v; want ErrBusy", ok, err)
		}
		if took := time.Since(begin); took < s.slotWait || took > guard {
			t.Fatalf("refused after %v; want after the %v deadline", took, s.slotWait)
		}
	})
	s.queue <- struct{}{} // now full
	t.Run("refused at once when full", func(t *testing.T) {
		s.slotWait = guard // a wait would fail the test's time bound
		begin := time.Now()
		ok, _, err := s.Check(context.Background(), Owner, pw)
		if !errors.Is(err, ErrBusy) || ok {
			t.Fatalf("Check = %v, %v; want ErrBusy", ok, err)
		}
		if took := time.Since(begin); took >= guard {
			t.Fatalf("refused after %v; want at once", took)
		}
	})
	for range cap(s.queue) {
		<-s.queue
	}
	<-s.slots
	if !mustCheck(t, s, Owner, pw) {
		t.Fatal("the right password fails once the queue is free")
	}
	if len(s.slots) != 0 || len(s.queue) != 0 {
		t.Fatalf("%d slots and %d queue places still taken", len(s.slots), len(s.queue))
	}
}

// TestCheckRacesSet: checks of the old password racing Set, in this store
// and from a second one as camd passwd would be, never succeed with the
// version the new password got, so every token they could sign is refused
// after Set returns.
func TestCheckRacesSet(t *testing.T) {
	for _, tt := range []struct {
		name  string
		other bool
	}{{"same store", false}, {"another process's store", true}} {
		t.Run(tt.name, func(t *testing.T) {
			s, d := newTestStore(t, 2)
			mustSet(t, s, "old password")
			setter := s
			if tt.other {
				setter = NewStore(d, cheapParams, 1)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var (
				mu       sync.Mutex
				versions []string
				wg       sync.WaitGroup
			)
			for range 4 {
				wg.Go(func() {
					for ctx.Err() == nil {
						ok, v, err := s.Check(ctx, Owner, "old password")
						if ok {
							mu.Lock()
							versions = append(versions, v)
							mu.Unlock()
						} else if err != nil && !errors.Is(err, ErrChanged) && !errors.Is(err, ErrBusy) && ctx.Err() == nil {
							t.Error(err)
						}
					}
				})
			}
			for i := range 20 {
				time.Sleep(2 * time.Millisecond)
				if err := setter.Set(fmt.Sprintf("new password %d", i), time.Now()); err != nil {
					t.Fatal(err)
				}
				ch, err := s.Changed()
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				for _, v := range versions {
					if v == ch.Version {
						t.Errorf("set %d: an old-password check succeeded with the new version", i)
					}
				}
				versions = versions[:0]
				mu.Unlock()
				if err := setter.Set("old password", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			wg.Wait()
		})
	}
}

// TestCheckOverlappingSet: a check that read the old hash, then waited for
// a slot while the password changed, fails once the change has returned,
// for logins (Check) and Basic (CheckRecent) alike; it is ErrChanged, not a
// wrong password.
func TestCheckOverlappingSet(t *testing.T) {
	for _, tt := range []struct {
		name  string
		check func(s *Store) (bool, error)
	}{
		{"Check", func(s *Store) (bool, error) {
			ok, _, err := s.Check(context.Background(), Owner, "old password")
			return ok, err
		}},
		{"CheckRecent", func(s *Store) (bool, error) {
			return s.CheckRecent(context.Background(), Owner, "old password")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, 1)
			mustSet(t, s, "old password")
			s.slots <- struct{}{} // the check will read the hash, then wait here
			type result struct {
				ok  bool
				err error
			}
			done := make(chan result, 1)
			go func() {
				ok, err := tt.check(s)
				done <- result{ok, err}
			}()
			for len(s.queue) == 0 { // it has read the hash and queued
				time.Sleep(time.Millisecond)
			}
			mustSet(t, s, "new password")
			<-s.slots
			r := <-done
			if r.ok || !errors.Is(r.err, ErrChanged) {
				t.Fatalf("check of the old password across the change = %v, %v; want false, ErrChanged", r.ok, r.err)
			}
			if !mustCheck(t, s, Owner, "new password") {
				t.Fatal("the new password fails")
			}
		})
	}
}

// TestChangedSeesEveryReplacement: what one Store (camd passwd, another
// process) writes, another (the server) sees on its very next Changed,
// however quickly the changes follow each other: the cache is keyed on the
// file's inode, which every atomic replacement changes.
func TestChangedSeesEveryReplacement(t *testing.T) {
	d, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	server, cli := NewStore(d, cheapParams, 1), NewStore(d, cheapParams, 1)
	if ch, err := server.Changed(); err != nil || ch.Version != "" {
		t.Fatalf("before any change: %+v, %v; want none", ch, err)
	}
	seen := map[string]bool{}
	for i := range 20 {
		at := time.Unix(1796222611, 0) // the same second every time: only the inode tells
		if err := cli.Set(fmt.Sprintf("password %d", i), at); err != nil {
			t.Fatal(err)
		}
		ch, err := server.Changed()
		if err != nil {
			t.Fatal(err)
		}
		want, err := cli.Changed()
		if err != nil {
			t.Fatal(err)
		}
		if ch.Version != want.Version || seen[ch.Version] {
			t.Fatalf("change %d: the server sees version %q, want the new %q", i, ch.Version, want.Version)
		}
		seen[ch.Version] = true
	}
}
