// Package lockout slows down password guessing (POST /api/login and HTTP
// Basic auth) by counting failed attempts per client address.
//
// An address that fails MaxFailures times within Window is locked: callers
// should answer 429 Too Many Requests with Retry-After (rounded up to whole
// seconds) and not check the password at all. The first lock lasts FirstLock.
// A failure that arrives less than Window after the previous lock ended
// starts the next lock at once, twice as long, up to MaxLock: with the
// defaults 1m, 2m, 4m, 8m, 15m, 15m, ... An address that stays quiet for
// Window after its last lock ended (or, never locked, for Window after its
// last failure) is forgotten. A success forgets the address at once.
//
// Memory is bounded because the camera has little of it and the addresses
// are chosen by whoever is attacking: at most MaxEntries addresses are
// tracked, about 200 bytes each with IP-sized keys and the default
// MaxFailures (see entry), so the default 4096 entries take under 1 MiB; the
// tests assert that tracking 4096 addresses grows the heap by less than
// 2 MiB. When the table is full, a new address evicts, in this order: an
// entry that has been forgotten anyway; else the unlocked entry with the
// oldest activity; only when every entry is locked, the lock that ends
// soonest. A flood of one-off failures from many addresses therefore cannot
// push a locked address out and so unlock it.
package lockout

import (
	"container/heap"
	"strings"
	"sync"
	"time"
)

// maxAddrLen bounds a key so that a caller who passes something longer than
// an IP (a forwarded-for header, say) cannot make entries large; an IPv6
// address with a zone fits.
const maxAddrLen = 64

// Config tunes a Limiter; zero fields take the defaults.
type Config struct {
	// MaxFailures is how many failures within Window lock an address;
	// default 5. Values above 255 are cut to 255, as every entry keeps
	// that many timestamps.
	MaxFailures int
	// Window is how long a failure counts, and how long after a lock ends
	// the next failure still doubles the lock; default 15 minutes.
	Window time.Duration
	// FirstLock is the length of the first lock; default 1 minute.
	FirstLock time.Duration
	// MaxLock caps the doubling; default 15 minutes. A MaxLock below
	// FirstLock is raised to FirstLock.
	MaxLock time.Duration
	// MaxEntries bounds how many addresses are tracked; default 4096.
	MaxEntries int
	// Now tells the time; default time.Now. Keep a clock with a monotonic
	// reading (time.Now has one): readings are only ever subtracted, so an
	// NTP step after boot neither unlocks nor locks anybody.
	Now func() time.Time
}

// Limiter counts failed password attempts per address. It is safe for
// concurrent use.
type Limiter struct {
	maxFailures int
	window      int64 // the durations are in nanoseconds, like entry times
	firstLock   int64
	maxLock     int64
	maxEntries  int
	now         func() time.Time
	epoch       time.Time // entry times are nanoseconds since epoch

	mu sync.Mutex
	m  map[string]*entry
	// Every entry is either on the list (not locked right now), ordered by
	// activity, oldest at head, or in locked, a min-heap by lock end.
	// Eviction takes the list head, or the heap top when the list is empty.
	head, tail *entry
	locked     lockHeap
}

// entry is one tracked address. On amd64 the struct is 72 bytes (an 80-byte
// allocation); fails takes 48 more with MaxFailures 5, the cloned key 16
// (IPv4) to 48 (IPv6), the map about 30-60 (a slot is 24 bytes plus a
// control byte, with load factor and power-of-two growth) and the heap one
// pointer: about 200 bytes in all.
//
// An entry's activity is its newest failure while level is 0, else the end
// of its latest lock, which is when it could next do harm. The list stays
// sorted by activity because expired locks move to its tail in the order they
// end, before any failure that is later; and an entry whose activity is
// Window old is worth nothing, as the next failure would find no state to act
// on, so it is dropped from the list head.
type entry struct {
	addr       string
	prev, next *entry  // list links; nil while locked
	fails      []int64 // ring of the latest failure times, used while level is 0
	until      int64   // end of the latest lock, while level > 0
	idx        int32   // index in Limiter.locked, or -1 while on the list
	head       uint8   // next slot of fails to write
	n          uint8   // slots of fails in use
	level      uint8   // locks in the current run; 0 before the first
}

// New returns a Limiter for cfg, with defaults for its zero fields.
func New(cfg Config) *Limiter {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	cfg.MaxFailures = min(cfg.MaxFailures, 255)
	if cfg.Window <= 0 {
		cfg.Window = 15 * time.Minute
	}
	if cfg.FirstLock <= 0 {
		cfg.FirstLock = time.Minute
	}
	if cfg.MaxLock <= 0 {
		cfg.MaxLock = 15 * time.Minute
	}
	cfg.MaxLock = max(cfg.MaxLock, cfg.FirstLock)
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{
		maxFailures: cfg.MaxFailures,
		window:      int64(cfg.Window),
		firstLock:   int64(cfg.FirstLock),
		maxLock:     int64(cfg.MaxLock),
		maxEntries:  cfg.MaxEntries,
		now:         cfg.Now,
		epoch:       cfg.Now(),
		m:           make(map[string]*entry),
	}
}

// Check reports whether addr may try a password now; when not, how long until it may.
func (l *Limiter) Check(addr string) (ok bool, retryAfter time.Duration) {
	addr = clip(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[addr]
	if e == nil || e.idx < 0 {
		return true, 0
	}
	if d := e.until - l.clock(); d > 0 {
		return false, time.Duration(d)
	}
	return true, 0
}

// Failure records a failed password attempt from addr and reports whether addr is now locked, and for how long.
//
// A failure while addr is locked changes nothing: the caller should not have
// checked the password, and extending the lock would let anyone who can
// spoof addr keep its owner out indefinitely.
func (l *Limiter) Failure(addr string) (locked bool, retryAfter time.Duration) {
	addr = clip(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock() // read under the lock so times reach the list in order
	l.tidy(now)
	e := l.m[addr]
	switch {
	case e == nil:
		e = l.add(addr)
	case e.idx >= 0:
		return true, time.Duration(e.until - now)
	default:
		l.unlink(e)
	}
	if e.level > 0 {
		if now-e.until < l.window {
			if l.lockFor(e.level) < l.maxLock {
				e.level++
			}
			return l.lock(e, now)
		}
		// Quiet for a whole window after the lock (tidy normally drops
		// such an entry, unless the clock went backwards): start over.
		e.level, e.n, e.head = 0, 0, 0
	}
	e.fails[e.head] = now
	e.head++
	if int(e.head) == len(e.fails) {
		e.head = 0
	}
	if int(e.n) < len(e.fails) {
		e.n++
	}
	// When the ring is full, fails[head] is the oldest of the last
	// MaxFailures failures; if even it is inside the window, all are.
	if int(e.n) == len(e.fails) && now-e.fails[e.head] < l.window {
		e.level = 1
		return l.lock(e, now)
	}
	l.pushBack(e)
	return false, 0
}

// Success forgets addr.
func (l *Limiter) Success(addr string) {
	addr = clip(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[addr]
	if e == nil {
		return
	}
	if e.idx >= 0 {
		heap.Remove(&l.locked, int(e.idx))
	} else {
		l.unlink(e)
	}
	delete(l.m, addr)
}

// Len is the number of addresses tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// clock is the time in nanoseconds since l was made; Sub uses the monotonic
// readings when both times have them.
func (l *Limiter) clock() int64 {
	return int64(l.now().Sub(l.epoch))
}

// clip shortens an over-long key; see maxAddrLen.
func clip(addr string) string {
	if len(addr) > maxAddrLen {
		return addr[:maxAddrLen]
	}
	return addr
}

// lockFor is the length of the lock at level (1 for the first lock). New
// makes firstLock <= maxLock, and the loop stops doubling before d could
// pass maxLock or overflow.
func (l *Limiter) lockFor(level uint8) int64 {
	d := l.firstLock
	for i := uint8(1); i < level; i++ {
		if d > l.maxLock/2 {
			return l.maxLock
		}
		d *= 2
	}
	return d
}

// lock locks e, which is on neither the list nor the heap, from now for the
// length its level calls for.
func (l *Limiter) lock(e *entry, now int64) (bool, time.Duration) {
	d := l.lockFor(e.level)
	e.until = now + d
	heap.Push(&l.locked, e)
	return true, time.Duration(d)
}

// tidy moves expired locks to the list and drops worthless entries from its
// head. Each entry is moved and dropped at most once per lock, so the cost
// is amortised over the calls that made the locks.
func (l *Limiter) tidy(now int64) {
	for len(l.locked) > 0 && l.locked[0].until <= now {
		l.pushBack(heap.Pop(&l.locked).(*entry))
	}
	for e := l.head; e != nil && now-e.activity() >= l.window; e = l.head {
		l.unlink(e)
		delete(l.m, e.addr)
	}
}

// activity is when e last did or could do harm; see entry.
func (e *entry) activity() int64 {
	if e.level > 0 {
		return e.until
	}
	i := int(e.head) - 1
	if i < 0 {
		i = len(e.fails) - 1
	}
	return e.fails[i]
}

// add starts tracking addr, evicting an entry when the table is full and
// reusing its memory. The new entry is on neither the list nor the heap.
func (l *Limiter) add(addr string) *entry {
	var e *entry
	if len(l.m) >= l.maxEntries {
		if e = l.head; e != nil {
			l.unlink(e)
		} else {
			e = heap.Pop(&l.locked).(*entry)
		}
		delete(l.m, e.addr)
	} else {
		e = &entry{fails: make([]int64, l.maxFailures)}
	}
	// Clone so that the table never pins a larger string the key was cut from.
	*e = entry{addr: strings.Clone(addr), fails: e.fails, idx: -1}
	l.m[e.addr] = e
	return e
}

// pushBack appends e, most recent activity, to the list.
func (l *Limiter) pushBack(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// unlink takes e off the list.
func (l *Limiter) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// lockHeap is the locked entries, soonest end first, for container/heap.
// Each entry keeps its index so that Success can remove it in O(log n).
type lockHeap []*entry

func (h lockHeap) Len() int           { return len(h) }
func (h lockHeap) Less(i, j int) bool { return h[i].until < h[j].until }

func (h lockHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = int32(i)
	h[j].idx = int32(j)
}

func (h *lockHeap) Push(x any) {
	e := x.(*entry)
	e.idx = int32(len(*h))
	*h = append(*h, e)
}

func (h *lockHeap) Pop() any {
	old := *h
	n := len(old) - 1
	e := old[n]
	old[n] = nil
	*h = old[:n]
	e.idx = -1
	return e
}
