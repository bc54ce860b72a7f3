package lockout

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// fakeClock is a settable clock, safe for concurrent use, so no test sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLimiter is a Limiter with the defaults except MaxEntries, on a fake clock.
func newLimiter(maxEntries int) (*Limiter, *fakeClock) {
	c := newClock()
	return New(Config{MaxEntries: maxEntries, Now: c.Now}), c
}

// fail records n failures from addr and returns the result of the last.
func fail(l *Limiter, addr string, n int) (bool, time.Duration) {
	var locked bool
	var d time.Duration
	for range n {
		locked, d = l.Failure(addr)
	}
	return locked, d
}

// ipv4 is a distinct IPv4-shaped address for each i below 2^24.
func ipv4(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
}

// checkInvariants checks the table's internal structure: every entry on
// exactly one of the list (sorted by activity) and the heap, the heap ordered
// and indexed, and the bound kept.
func checkInvariants(t testing.TB, l *Limiter) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	var prev *entry
	for e := l.head; e != nil; e = e.next {
		if e.prev != prev || e.idx != -1 || e.pending != 0 || l.m[e.addr] != e {
			t.Fatalf("list entry %q: bad links, idx %d or map entry", e.addr, e.idx)
		}
		if prev != nil && prev.activity() > e.activity() {
			t.Fatalf("list not sorted: %q (%d) before %q (%d)", prev.addr, prev.activity(), e.addr, e.activity())
		}
		prev = e
		if n++; n > len(l.m) {
			t.Fatal("list longer than map: cycle?")
		}
	}
	if l.tail != prev {
		t.Fatal("tail is not the last list entry")
	}
	for i, e := range l.locked {
		if int(e.idx) != i || l.m[e.addr] != e || e.prev != nil || e.next != nil || e.level == 0 {
			t.Fatalf("heap entry %d %q: idx %d, level %d, or links or map entry wrong", i, e.addr, e.idx, e.level)
		}
		if i > 0 && l.locked[(i-1)/2].until > e.until {
			t.Fatalf("heap order broken at %d", i)
		}
	}
	busyN := 0
	for _, e := range l.m {
		if e.idx == busy {
			if e.pending == 0 || e.prev != nil || e.next != nil || l.head == e {
				t.Fatalf("busy entry %q: pending %d or links wrong", e.addr, e.pending)
			}
			busyN++
		}
	}
	if n+len(l.locked)+busyN != len(l.m) {
		t.Fatalf("list %d + heap %d + busy %d != map %d", n, len(l.locked), busyN, len(l.m))
	}
	if len(l.m) > l.maxEntries {
		t.Fatalf("%d entries, bound %d", len(l.m), l.maxEntries)
	}
}

func TestDefaults(t *testing.T) {
	l := New(Config{})
	if l.maxFailures != 5 || l.window != int64(15*time.Minute) || l.firstLock != int64(time.Minute) ||
		l.maxLock != int64(15*time.Minute) || l.maxEntries != 4096 || l.now == nil {
		t.Fatalf("defaults wrong: %+v", l)
	}
	l = New(Config{MaxFailures: 1000, FirstLock: time.Hour, MaxLock: time.Minute})
	if l.maxFailures != 255 || l.maxLock != int64(time.Hour) {
		t.Fatalf("limits not applied: maxFailures %d, maxLock %v", l.maxFailures, time.Duration(l.maxLock))
	}
	// The default clock is time.Now: a lock taken now is still on.
	fail(l, "a", 255)
	if ok, d := l.Check("a"); ok || d <= 0 || d > time.Hour {
		t.Fatalf("real clock: Check = %v, %v; want locked for up to 1h", ok, d)
	}
}

func TestThreshold(t *testing.T) {
	tests := []struct {
		name     string
		earlier  int // failures a whole window before the others
		failures int
		gap      time.Duration // between failures
		locked   bool
		retry    time.Duration
	}{
		{"4 failures at once are allowed", 0, 4, 0, false, 0},
		{"the 5th at once locks for 1m", 0, 5, 0, true, time.Minute},
		{"5 within 12m lock", 0, 5, 3 * time.Minute, true, time.Minute},
		{"5 within 1s under the window lock", 0, 5, (15*time.Minute - time.Second) / 4, true, time.Minute},
		{"5 spanning exactly the window do not lock", 0, 5, 15 * time.Minute / 4, false, 0},
		{"5 spanning 16m do not lock", 0, 5, 4 * time.Minute, false, 0},
		{"9 spanning 32m, 4m apart, never lock", 0, 9, 4 * time.Minute, false, 0},
		{"4 now after 4 a window ago do not lock", 4, 4, 0, false, 0},
		{"5 now after 4 a window ago lock", 4, 5, 0, true, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newLimiter(0)
			if tt.earlier > 0 {
				fail(l, "a", tt.earlier)
				c.Advance(15 * time.Minute)
			}
			var locked bool
			var d time.Duration
			for i := range tt.failures {
				if i > 0 {
					c.Advance(tt.gap)
				}
				locked, d = l.Failure("a")
				if locked && i < tt.failures-1 {
					t.Fatalf("locked after %d failures", i+1)
				}
			}
			if locked != tt.locked || d != tt.retry {
				t.Fatalf("Failure = %v, %v; want %v, %v", locked, d, tt.locked, tt.retry)
			}
			if ok, d := l.Check("a"); ok == tt.locked || d != tt.retry {
				t.Fatalf("Check = %v, %v; want %v, %v", ok, d, !tt.locked, tt.retry)
			}
			checkInvariants(t, l)
		})
	}
}

func TestBackoff(t *testing.T) {
	l, c := newLimiter(0)
	if locked, d := fail(l, "a", 5); !locked || d != time.Minute {
		t.Fatalf("5th failure: %v, %v; want locked 1m", locked, d)
	}
	// During the lock Check says no, with a shrinking wait.
	for _, tc := range []struct{ advance, want time.Duration }{
		{0, time.Minute},
		{20 * time.Second, 40 * time.Second},
		{39 * time.Second, time.Second},
		{time.Second - time.Nanosecond, time.Nanosecond},
	} {
		c.Advance(tc.advance)
		if ok, d := l.Check("a"); ok || d != tc.want {
			t.Fatalf("Check during lock = %v, %v; want false, %v", ok, d, tc.want)
		}
	}
	// A failure during the lock neither extends nor escalates it.
	if locked, d := l.Failure("a"); !locked || d != time.Nanosecond {
		t.Fatalf("Failure during lock = %v, %v; want true, 1ns", locked, d)
	}
	c.Advance(time.Nanosecond)
	if ok, d := l.Check("a"); !ok || d != 0 {
		t.Fatalf("Check at expiry = %v, %v; want true, 0", ok, d)
	}
	// Each failure after a lock expires locks again, twice as long, capped.
	for i, want := range []time.Duration{2, 4, 8, 15, 15, 15} {
		want *= time.Minute
		locked, d := l.Failure("a")
		if !locked || d != want {
			t.Fatalf("lock %d: Failure = %v, %v; want true, %v", i+2, locked, d, want)
		}
		c.Advance(want - time.Nanosecond)
		if ok, _ := l.Check("a"); ok {
			t.Fatalf("lock %d ended early", i+2)
		}
		c.Advance(time.Nanosecond)
		if ok, _ := l.Check("a"); !ok {
			t.Fatalf("lock %d did not end after %v", i+2, want)
		}
		checkInvariants(t, l)
	}
	// The level stops growing at the cap, so it never wraps round to a
	// short lock, however long the attack goes on.
	for i := range 300 {
		if locked, d := l.Failure("a"); !locked || d != 15*time.Minute {
			t.Fatalf("lock %d: Failure = %v, %v; want true, 15m", i+8, locked, d)
		}
		c.Advance(15 * time.Minute)
	}
}

func TestBackoffEndsAfterQuietWindow(t *testing.T) {
	tests := []struct {
		quiet  time.Duration // after the first lock ends
		locked bool
		retry  time.Duration
	}{
		{0, true, 2 * time.Minute},
		{15*time.Minute - time.Nanosecond, true, 2 * time.Minute},
		{15 * time.Minute, false, 0},
		{time.Hour, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.quiet.String(), func(t *testing.T) {
			l, c := newLimiter(0)
			fail(l, "a", 5)
			c.Advance(time.Minute + tt.quiet)
			if locked, d := l.Failure("a"); locked != tt.locked || d != tt.retry {
				t.Fatalf("Failure = %v, %v; want %v, %v", locked, d, tt.locked, tt.retry)
			}
			if tt.locked {
				return
			}
			// Forgotten: 5 failures again, and the first lock again.
			if locked, _ := fail(l, "a", 3); locked {
				t.Fatal("locked after 4 failures")
			}
			if locked, d := l.Failure("a"); !locked || d != time.Minute {
				t.Fatalf("5th failure = %v, %v; want true, 1m", locked, d)
			}
			checkInvariants(t, l)
		})
	}
}

func TestSuccessResets(t *testing.T) {
	l, c := newLimiter(0)
	fail(l, "a", 5)
	c.Advance(time.Minute)
	if _, d := l.Failure("a"); d != 2*time.Minute {
		t.Fatalf("second lock %v; want 2m", d)
	}
	c.Advance(2 * time.Minute)
	l.Success("a")
	if n := l.Len(); n != 0 {
		t.Fatalf("Len after Success = %d; want 0", n)
	}
	if locked, _ := fail(l, "a", 4); locked {
		t.Fatal("locked after 4 failures following a success")
	}
	if locked, d := l.Failure("a"); !locked || d != time.Minute {
		t.Fatalf("5th failure after success = %v, %v; want true, 1m", locked, d)
	}
	// Success during a lock (a caller that checked anyway) also forgets.
	l.Success("a")
	if ok, _ := l.Check("a"); !ok {
		t.Fatal("still locked after Success")
	}
	l.Success("never-seen") // no-op
	checkInvariants(t, l)
}

func TestAddressesAreIndependent(t *testing.T) {
	l, _ := newLimiter(0)
	fail(l, "192.0.2.1", 5)
	if locked, _ := fail(l, "192.0.2.2", 4); locked {
		t.Fatal("b locked by a's failures")
	}
	if ok, _ := l.Check("192.0.2.1"); ok {
		t.Fatal("a not locked")
	}
	if ok, _ := l.Check("192.0.2.2"); !ok {
		t.Fatal("b locked")
	}
	if ok, _ := l.Check("192.0.2.3"); !ok {
		t.Fatal("unseen address locked")
	}
	l.Success("192.0.2.2")
	if ok, _ := l.Check("192.0.2.1"); ok {
		t.Fatal("b's success unlocked a")
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("Len = %d; want 1 (Check must not track)", n)
	}
}

func TestLongAddressesAreClipped(t *testing.T) {
	l, _ := newLimiter(0)
	prefix := strings.Repeat("x", maxAddrLen)
	for i := range 5 {
		l.Failure(prefix + fmt.Sprint(i) + strings.Repeat("y", 1000))
	}
	if ok, _ := l.Check(prefix + "z"); ok {
		t.Fatal("addresses sharing the first 64 bytes counted apart")
	}
	// The key is a copy: it must not pin the 1 KiB string it was cut from.
	long := prefix + strings.Repeat("y", 1000)
	l.Success(long)
	l.Failure(long)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.m {
		if len(k) != maxAddrLen {
			t.Fatalf("key of %d bytes kept", len(k))
		}
		if unsafe.StringData(k) == unsafe.StringData(long) {
			t.Fatal("key shares the caller's string")
		}
	}
}

func TestMaxEntriesBound(t *testing.T) {
	const max, flood = 1000, 10_000
	l, c := newLimiter(max)
	for i := range flood {
		c.Advance(time.Millisecond)
		if locked, _ := l.Failure(ipv4(i)); locked {
			t.Fatalf("%s locked after one failure", ipv4(i))
		}
		if n := l.Len(); n > max {
			t.Fatalf("Len = %d after %d addresses; bound %d", n, i+1, max)
		}
	}
	if n := l.Len(); n != max {
		t.Fatalf("Len = %d; want %d", n, max)
	}
	checkInvariants(t, l)
	// The oldest went, the newest stayed.
	l.mu.Lock()
	_, oldest := l.m[ipv4(flood-max-1)]
	_, newest := l.m[ipv4(flood-max)]
	l.mu.Unlock()
	if oldest || !newest {
		t.Fatalf("tracked: oldest evicted-one %v (want false), oldest kept %v (want true)", oldest, newest)
	}
}

func TestLockedSurvivesFlood(t *testing.T) {
	const max, flood = 1000, 10_000
	l, c := newLimiter(max)
	fail(l, "victim", 5)
	for i := range flood {
		c.Advance(time.Millisecond) // 10s in all, well inside the lock
		l.Failure(ipv4(i))
		if n := l.Len(); n > max {
			t.Fatalf("Len = %d; bound %d", n, max)
		}
	}
	if ok, d := l.Check("victim"); ok || d != time.Minute-10*time.Second {
		t.Fatalf("victim after flood: Check = %v, %v; want false, 50s", ok, d)
	}
	checkInvariants(t, l)
	// Its backoff survived too: the next lock is the second one.
	c.Advance(time.Minute)
	if locked, d := l.Failure("victim"); !locked || d != 2*time.Minute {
		t.Fatalf("victim's next failure = %v, %v; want true, 2m", locked, d)
	}
}

// TestEvictionOrder checks, with MaxEntries 3, the three eviction rules.
func TestEvictionOrder(t *testing.T) {
	tracked := func(l *Limiter, addrs ...string) string {
		l.mu.Lock()
		defer l.mu.Unlock()
		var have []string
		for _, a := range addrs {
			if _, ok := l.m[a]; ok {
				have = append(have, a)
			}
		}
		return strings.Join(have, ",")
	}
	t.Run("forgotten entries go first", func(t *testing.T) {
		l, c := newLimiter(3)
		fail(l, "old", 5) // locked 1m, worthless from 16m on
		c.Advance(time.Minute)
		l.Failure("x") // activity 1m
		c.Advance(15 * time.Minute)
		l.Failure("y")
		l.Failure("z")
		if got := tracked(l, "old", "x", "y", "z"); got != "y,z" {
			t.Fatalf("tracked %s; want y,z", got)
		}
		checkInvariants(t, l)
	})
	t.Run("then the oldest unlocked", func(t *testing.T) {
		l, c := newLimiter(3)
		fail(l, "locked", 5)
		l.Failure("x")
		c.Advance(time.Second)
		l.Failure("y")
		c.Advance(time.Second)
		l.Failure("x") // x is now newer than y
		l.Failure("z")
		if got := tracked(l, "locked", "x", "y", "z"); got != "locked,x,z" {
			t.Fatalf("tracked %s; want locked,x,z", got)
		}
		checkInvariants(t, l)
	})
	t.Run("an expired lock counts from its end", func(t *testing.T) {
		// a's lock ended at 1m, after b's failure at 30s: b goes, and a
		// keeps its backoff.
		l, c := newLimiter(2)
		fail(l, "a", 5)
		c.Advance(30 * time.Second)
		l.Failure("b")
		c.Advance(90 * time.Second)
		l.Failure("c")
		if got := tracked(l, "a", "b", "c"); got != "a,c" {
			t.Fatalf("tracked %s; want a,c", got)
		}
		if _, d := l.Failure("a"); d != 2*time.Minute {
			t.Fatalf("a's next lock %v; want 2m", d)
		}
		checkInvariants(t, l)
	})
	t.Run("all locked: nothing is evicted, the new address is refused", func(t *testing.T) {
		l, c := newLimiter(3)
		fail(l, "a", 5) // 0-1m
		c.Advance(time.Minute)
		l.Failure("a") // 1m-3m
		c.Advance(time.Second)
		fail(l, "b", 5) // ends 2m1s
		c.Advance(time.Second)
		fail(l, "c", 5) // ends 2m2s
		c.Advance(time.Second)
		if locked, _ := l.Failure("d"); locked {
			t.Fatal("new address locked")
		}
		_, err := l.Begin("d")
		var r *Refusal
		if !errors.As(err, &r) || r.Locked || r.RetryAfter != 58*time.Second {
			t.Fatalf("Begin(d) = %v; want busy until b's lock ends in 58s", err)
		}
		if got := tracked(l, "a", "b", "c", "d"); got != "a,b,c" {
			t.Fatalf("tracked %s; want a,b,c", got)
		}
		for _, a := range []string{"a", "b", "c"} {
			if ok, _ := l.Check(a); ok {
				t.Fatalf("%s unlocked", a)
			}
		}
		checkInvariants(t, l)
	})
	t.Run("all locked flood stays bounded and unlocks nobody", func(t *testing.T) {
		const max = 100
		c := newClock()
		l := New(Config{MaxFailures: 1, MaxEntries: max, Now: c.Now})
		for i := range 10 * max {
			c.Advance(time.Millisecond)
			locked, d := l.Failure(ipv4(i))
			if i < max && (!locked || d != time.Minute) {
				t.Fatalf("Failure %d = %v, %v; want true, 1m", i, locked, d)
			}
			if i >= max && locked {
				t.Fatalf("Failure %d locked an address the full table cannot hold", i)
			}
			if n := l.Len(); n > max {
				t.Fatalf("Len = %d; bound %d", n, max)
			}
		}
		checkInvariants(t, l)
		for i := range max {
			if ok, _ := l.Check(ipv4(i)); ok {
				t.Fatalf("lock %d was evicted", i)
			}
		}
	})
}

func TestConcurrent(t *testing.T) {
	const workers, ops, addrs, max = 8, 5000, 24, 16
	c := newClock()
	l := New(Config{MaxEntries: max, Now: c.Now})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range ops {
				a := ipv4(r.IntN(addrs))
				switch r.IntN(10) {
				case 0:
					l.Success(a)
				case 1, 2, 3:
					if ok, d := l.Check(a); ok != (d == 0) || d < 0 {
						t.Errorf("Check = %v, %v", ok, d)
					}
				case 4:
					c.Advance(time.Duration(r.IntN(30)) * time.Second)
				case 5:
					if at, err := l.Begin(a); err == nil {
						switch r.IntN(3) {
						case 0:
							at.Fail()
						case 1:
							at.Succeed()
						default:
							at.Abandon()
						}
					}
					if n := l.Len(); n > max {
						t.Errorf("Len = %d; bound %d", n, max)
					}
				default:
					if locked, d := l.Failure(a); locked != (d > 0) || d > 15*time.Minute {
						t.Errorf("Failure = %v, %v", locked, d)
					}
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, l)
}

// heapGrowth reports how much live heap fill adds to a fresh Limiter made
// by mk, after garbage collection.
func heapGrowth(mk func() *Limiter, fill func(*Limiter)) (int64, *Limiter) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := mk()
	fill(l)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(l)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), l
}

// TestMemory checks the bound stated in the package doc: tracking 4096
// addresses grows the heap by less than 2 MiB.
func TestMemory(t *testing.T) {
	const bound = 2 << 20
	ipv6 := func(i int) string { return fmt.Sprintf("2001:db8:ffff:ffff:ffff:ffff:%x:%x", i>>16, i&0xffff) }
	tests := []struct {
		name     string
		entries  int
		addrs    int
		failures int
		addr     func(int) string
	}{
		{"4096 IPv4 one failure", 4096, 4096, 1, ipv4},
		{"4096 IPv4 all locked", 4096, 4096, 5, ipv4},
		{"4096 IPv6 all locked", 4096, 4096, 5, ipv6},
		{"10000 IPv4 flood into 4096", 4096, 10_000, 1, ipv4},
		{"10000 IPv6 flood into 4096", 4096, 10_000, 1, ipv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			growth, l := heapGrowth(
				func() *Limiter { return New(Config{MaxEntries: tt.entries, Now: c.Now}) },
				func(l *Limiter) {
					for i := range tt.addrs {
						c.Advance(time.Millisecond)
						fail(l, tt.addr(i), tt.failures)
					}
				})
			if n := l.Len(); n != tt.entries {
				t.Fatalf("Len = %d; want %d", n, tt.entries)
			}
			t.Logf("heap growth %d bytes, %d per entry", growth, growth/int64(tt.entries))
			if growth >= bound {
				t.Fatalf("heap grew %d bytes; bound %d", growth, bound)
			}
		})
	}
}

func BenchmarkFailureFlood(b *testing.B) {
	addrs := make([]string, 1<<16) // distinct; 16x MaxEntries, so each is new
	for i := range addrs {
		addrs[i] = ipv4(i)
	}
	var t time.Time
	now := func() time.Time { t = t.Add(time.Microsecond); return t } // one goroutine
	b.Run("unlocked", func(b *testing.B) {
		l := New(Config{MaxEntries: 4096, Now: now})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Failure(addrs[i&(len(addrs)-1)])
			i++
		}
	})
	b.Run("all-locked", func(b *testing.B) {
		// MaxFailures 1: every failure locks, so each evicts from the heap.
		l := New(Config{MaxFailures: 1, MaxEntries: 4096, Now: now})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Failure(addrs[i&(len(addrs)-1)])
			i++
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	l := New(Config{})
	fail(l, "192.0.2.1", 5)
	b.ReportAllocs()
	for b.Loop() {
		l.Check("192.0.2.1")
	}
}

// refusal returns Begin's refusal, failing t when there is none.
func refusal(t *testing.T, err error) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("Begin error %v; want a *Refusal", err)
	}
	return r
}

// TestBeginBurst is the concurrent attack: attempts in flight count before
// any is finished, so a burst of 100 gets MaxPending reservations, and
// however the burst is repeated no more than MaxFailures are checked before
// the lock.
func TestBeginBurst(t *testing.T) {
	l, _ := newLimiter(0)
	var (
		mu       sync.Mutex
		attempts []*Attempt
		locked   int
		busyN    int
		wg       sync.WaitGroup
	)
	checked := 0
	for round := 0; round < 10; round++ {
		attempts = attempts[:0]
		for range 100 {
			wg.Go(func() {
				at, err := l.Begin("203.0.113.9")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if refusal(t, err).Locked {
						locked++
					} else {
						busyN++
					}
					return
				}
				attempts = append(attempts, at)
			})
		}
		wg.Wait()
		if len(attempts) > 2 {
			t.Fatalf("round %d: %d attempts in flight at once; want at most MaxPending 2", round, len(attempts))
		}
		checked += len(attempts)
		for _, at := range attempts {
			at.Fail()
			at.Fail() // a second call changes nothing
		}
		checkInvariants(t, l)
	}
	if checked != 5 {
		t.Fatalf("%d passwords checked in 1,000 attempts; want exactly MaxFailures 5", checked)
	}
	if ok, d := l.Check("203.0.113.9"); ok || d != time.Minute {
		t.Fatalf("Check = %v, %v; want locked for 1m", ok, d)
	}
	if locked == 0 || busyN == 0 {
		t.Fatalf("refusals: %d locked, %d busy; want both kinds", locked, busyN)
	}
}

// TestBeginBudget checks the per-address rules one step at a time.
func TestBeginBudget(t *testing.T) {
	l, c := newLimiter(0)
	const a = "198.51.100.7"
	fail(l, a, 3)
	first, err := l.Begin(a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.Begin(a)
	if err != nil {
		t.Fatal(err)
	}
	// 3 failures + 2 in flight reach MaxFailures: a third is refused as
	// locked, even before MaxPending is considered.
	if r := refusal(t, second2(l.Begin(a))); !r.Locked || r.RetryAfter != time.Second {
		t.Fatalf("third in flight: %+v; want locked, retry 1s", r)
	}
	first.Abandon() // not counted: one place frees up
	third, err := l.Begin(a)
	if err != nil {
		t.Fatalf("after Abandon: %v", err)
	}
	second.Fail()
	third.Fail() // the fifth failure
	if ok, _ := l.Check(a); ok {
		t.Fatal("not locked after five failures")
	}
	if r := refusal(t, second2(l.Begin(a))); !r.Locked || r.RetryAfter != time.Minute {
		t.Fatalf("while locked: %+v; want locked, 1m", r)
	}
	// After the lock, one attempt at a time: its failure locks again.
	c.Advance(time.Minute)
	at, err := l.Begin(a)
	if err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	if r := refusal(t, second2(l.Begin(a))); !r.Locked {
		t.Fatalf("second attempt after a lock: %+v; want locked", r)
	}
	at.Fail()
	if ok, d := l.Check(a); ok || d != 2*time.Minute {
		t.Fatalf("after the next failure: %v, %v; want locked 2m", ok, d)
	}
	// A success forgets the address, also with others in flight.
	c.Advance(2 * time.Minute)
	x, _ := l.Begin(a)
	c.Advance(time.Second)
	y, err := l.Begin("198.51.100.8")
	if err != nil {
		t.Fatal(err)
	}
	x.Succeed()
	y.Succeed()
	if n := l.Len(); n != 0 {
		t.Fatalf("Len = %d after successes; want 0", n)
	}
	checkInvariants(t, l)
}

func second2(_ *Attempt, err error) error { return err }

// TestBusyNotEvicted: an entry with an attempt in flight survives a flood
// of new addresses, so the flood cannot reset its count.
func TestBusyNotEvicted(t *testing.T) {
	c := newClock()
	l := New(Config{MaxEntries: 4, GlobalInterval: time.Nanosecond, Now: c.Now})
	fail(l, "victim", 4)
	at, err := l.Begin("victim")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		c.Advance(time.Millisecond)
		if at, err := l.Begin(ipv4(i)); err == nil {
			at.Fail()
		}
	}
	checkInvariants(t, l)
	at.Fail()
	if ok, _ := l.Check("victim"); ok {
		t.Fatal("victim's fifth failure did not lock: its entry was evicted while in flight")
	}
}

// TestGlobalBudget: once half the table is in use, attempts from any
// address share one budget, one per GlobalInterval with bursts of
// MaxFailures.
func TestGlobalBudget(t *testing.T) {
	c := newClock()
	l := New(Config{MaxEntries: 8, Now: c.Now})
	for i := range 4 {
		fail(l, ipv4(i), 1)
	}
	allowed := 0
	for i := 4; i < 40; i++ {
		at, err := l.Begin(ipv4(i))
		if err != nil {
			if r := refusal(t, err); r.Locked || r.RetryAfter != time.Second {
				t.Fatalf("refusal %+v; want busy, retry 1s", r)
			}
			continue
		}
		allowed++
		at.Fail()
	}
	if allowed != 5 {
		t.Fatalf("%d attempts under pressure at one instant; want the burst of 5", allowed)
	}
	c.Advance(time.Second)
	at, err := l.Begin("192.0.2.200")
	if err != nil {
		t.Fatalf("a second later: %v", err)
	}
	at.Succeed()
	checkInvariants(t, l)
}

func TestKey(t *testing.T) {
	tests := []struct {
		ip     string
		prefix int
		want   string
	}{
		{"192.0.2.1", 64, "192.0.2.1"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::/56"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"::1", 64, "::/64"},
		{"not an ip", 64, "not an ip"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := Key(tt.ip, tt.prefix); got != tt.want {
				t.Fatalf("Key(%q, %d) = %q; want %q", tt.ip, tt.prefix, got, tt.want)
			}
		})
	}
}

// TestAbandonKeepsOrder: an attempt released without a failure puts its
// entry back where its activity belongs, or forgets an address that holds
// nothing, so eviction still takes the oldest.
func TestAbandonKeepsOrder(t *testing.T) {
	l, c := newLimiter(3)
	l.Failure("a")
	c.Advance(time.Second)
	l.Failure("b")
	c.Advance(time.Second)
	at, err := l.Begin("a")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := l.Begin("fresh")
	if err != nil {
		t.Fatal(err)
	}
	at.Abandon()
	fresh.Abandon()
	checkInvariants(t, l)
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d; want 2: an abandoned fresh address holds nothing", n)
	}
	l.Failure("c")
	l.Failure("d") // full: evicts the oldest, a
	l.mu.Lock()
	_, hasA := l.m["a"]
	_, hasB := l.m["b"]
	l.mu.Unlock()
	if hasA || !hasB {
		t.Fatalf("after eviction a tracked %v, b tracked %v; want a evicted as the oldest", hasA, hasB)
	}
	checkInvariants(t, l)
}
