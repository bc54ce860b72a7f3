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
// Attempts are gated with Begin, which reserves the attempt before the
// caller checks the password: attempts in flight count against the limit
// with the failures already recorded, so however many requests arrive at
// once, at most MaxFailures passwords per address are checked before the
// lock, and one after each lock ends. At most MaxPending attempts per
// address are in flight at once; more are refused as Busy, never queued.
//
// Memory is bounded because the camera has little of it and the addresses
// are chosen by whoever is attacking: at most MaxEntries addresses are
// tracked, about 200 bytes each with IP-sized keys and the default
// MaxFailures (see entry), so the default 4096 entries take under 1 MiB; the
// tests assert that tracking 4096 addresses grows the heap by less than
// 2 MiB. When the table is full, a new address evicts an entry that has been
// forgotten anyway, else the unlocked entry with the oldest activity. A
// locked entry, or one with an attempt in flight, is never evicted: when
// nothing else is left, the new address is refused as Busy. While the table
// is at least half full (under pressure), every attempt also takes a token
// from one global budget, one per GlobalInterval, so a flood from many
// addresses slows every password check instead of unlocking anybody.
//
// Addresses are keys: Key groups IPv6 addresses by prefix, as one host
// commonly holds a whole /64.
package lockout

import (
	"container/heap"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
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
	// MaxPending bounds the attempts one address has in flight; default
	// 2, as a cam hashes one or two passwords at a time anyway. Values
	// above 255 are cut to 255.
	MaxPending int
	// GlobalInterval is the global budget under pressure: one attempt per
	// interval across all addresses, with bursts of MaxFailures; default
	// 1 second, about what a cam's core spends on three hashes.
	GlobalInterval time.Duration
	// Now tells the time; default time.Now. Keep a clock with a monotonic
	// reading (time.Now has one): readings are only ever subtracted, so an
	// NTP step after boot neither unlocks nor locks anybody.
	Now func() time.Time
}

// Limiter counts failed password attempts per address. It is safe for
// concurrent use.
type Limiter struct {
	maxFailures    int
	maxPending     int
	window         int64 // the durations are in nanoseconds, like entry times
	firstLock      int64
	maxLock        int64
	maxEntries     int
	now            func() time.Time
	epoch          time.Time // entry times are nanoseconds since epoch
	global         *rate.Limiter
	globalInterval time.Duration

	mu sync.Mutex
	m  map[string]*entry
	// Every entry is in exactly one place: on the list (not locked, no
	// attempt in flight), ordered by activity, oldest at head; in locked,
	// a min-heap by lock end; or, unlocked with attempts in flight, in
	// neither (idx busy). Eviction takes only the list head.
	head, tail *entry
	locked     lockHeap
}

// busy is entry.idx for an unlocked entry with attempts in flight.
const busy = -2

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
// on, so it is dropped from the list head. An entry that comes back from
// busy without a new failure is put back in order (insertSorted), or
// dropped when it holds nothing.
type entry struct {
	addr       string
	prev, next *entry  // list links; nil unless on the list
	fails      []int64 // ring of the latest failure times, used while level is 0
	until      int64   // end of the latest lock, while level > 0
	idx        int32   // index in Limiter.locked; -1 on the list; busy
	head       uint8   // next slot of fails to write
	n          uint8   // slots of fails in use
	level      uint8   // locks in the current run; 0 before the first
	pending    uint8   // attempts in flight
}

// New returns a Limiter for cfg, with defaults for its zero fields.
func New(cfg Config) *Limiter {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	cfg.MaxFailures = min(cfg.MaxFailures, 255)
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 2
	}
	cfg.MaxPending = min(cfg.MaxPending, 255)
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
	if cfg.GlobalInterval <= 0 {
		cfg.GlobalInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{
		maxFailures:    cfg.MaxFailures,
		maxPending:     cfg.MaxPending,
		window:         int64(cfg.Window),
		firstLock:      int64(cfg.FirstLock),
		maxLock:        int64(cfg.MaxLock),
		maxEntries:     cfg.MaxEntries,
		now:            cfg.Now,
		epoch:          cfg.Now(),
		global:         rate.NewLimiter(rate.Every(cfg.GlobalInterval), cfg.MaxFailures),
		globalInterval: cfg.GlobalInterval,
		m:              make(map[string]*entry),
	}
}

// Refusal is why Begin refused an attempt.
type Refusal struct {
	// Locked is true when the address is locked, or would be if the
	// attempts it has in flight fail: answer 429. Otherwise the limiter is
	// busy (too many attempts in flight from the address, or a full
	// table, or the global budget spent): answer 503.
	Locked bool
	// RetryAfter is when to try again.
	RetryAfter time.Duration
}

func (r *Refusal) Error() string {
	if r.Locked {
		return "too many failed attempts"
	}
	return "too many password checks at once"
}

// Attempt is a reserved password check. Exactly one of Fail, Succeed and
// Abandon must be called when the check is over.
type Attempt struct {
	l    *Limiter
	e    *entry
	done bool
}

// Begin reserves an attempt for addr, before its password is checked. It
// refuses with a *Refusal when addr is locked, when its failures and the
// attempts it has in flight already reach MaxFailures (or, after a lock,
// one), when it has MaxPending in flight, or when the table is full of
// entries that must not be evicted or under pressure with the global budget
// spent.
func (l *Limiter) Begin(addr string) (*Attempt, error) {
	addr = clip(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	l.tidy(now)
	e := l.m[addr]
	if e != nil && e.idx >= 0 {
		return nil, &Refusal{Locked: true, RetryAfter: time.Duration(e.until - now)}
	}
	if e != nil {
		// After a lock, the next failure locks again: one at a time.
		allowed := 1
		if e.level == 0 {
			allowed = l.maxFailures - e.recent(now, l.window)
		}
		if int(e.pending) >= allowed {
			return nil, &Refusal{Locked: true, RetryAfter: time.Second}
		}
		if int(e.pending) >= l.maxPending {
			return nil, &Refusal{RetryAfter: time.Second}
		}
	}
	if e == nil && len(l.m) >= l.maxEntries && l.head == nil {
		// Full of locks and attempts in flight, which are never evicted.
		return nil, &Refusal{RetryAfter: l.soonestEnd(now)}
	}
	if len(l.m) >= l.maxEntries/2 && !l.global.AllowN(l.epoch.Add(time.Duration(now)), 1) {
		return nil, &Refusal{RetryAfter: l.globalInterval}
	}
	if e == nil {
		e = l.add(addr) // cannot fail: checked above
	} else if e.idx == -1 {
		l.unlink(e)
	}
	e.idx = busy
	e.pending++
	return &Attempt{l: l, e: e}, nil
}

// Fail records that the attempt's password was wrong.
func (a *Attempt) Fail() { a.finish(func(now int64) { a.l.fail(a.e.addr, now) }) }

// Succeed records that the attempt's password was right: the address is
// forgotten.
func (a *Attempt) Succeed() { a.finish(func(int64) { a.l.forget(a.e.addr) }) }

// Abandon releases the attempt without counting it, for a check that could
// not be made (the hash queue was full, the request went away).
func (a *Attempt) Abandon() { a.finish(func(int64) {}) }

func (a *Attempt) finish(record func(now int64)) {
	if a.done {
		return
	}
	a.done = true
	l, e := a.l, a.e
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	if l.m[e.addr] == e { // else forgotten meanwhile by another's success
		e.pending--
		if e.pending == 0 && e.idx == busy {
			if e.n == 0 && e.level == 0 {
				delete(l.m, e.addr) // it holds nothing worth keeping
			} else {
				l.insertSorted(e)
			}
		}
	}
	record(now)
}

// Check reports whether addr is locked now; when it is, for how long. It
// reserves nothing: gate a password check with Begin.
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

// Failure records a failed password attempt from addr and reports whether
// addr is now locked, and for how long. Attempts gated by Begin record
// theirs with Attempt.Fail.
//
// A failure while addr is locked changes nothing: the caller should not have
// checked the password, and extending the lock would let anyone who can
// spoof addr keep its owner out indefinitely.
func (l *Limiter) Failure(addr string) (locked bool, retryAfter time.Duration) {
	addr = clip(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(addr, l.clock())
}

// fail is Failure with l.mu held; now is read under the lock so that times
// reach the list in order.
func (l *Limiter) fail(addr string, now int64) (bool, time.Duration) {
	l.tidy(now)
	e := l.m[addr]
	switch {
	case e == nil:
		if e = l.add(addr); e == nil {
			// Full of locks and attempts in flight: Begin refuses
			// such an address, so only a direct Failure gets here.
			return false, 0
		}
	case e.idx >= 0:
		return true, time.Duration(e.until - now)
	case e.idx == -1:
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
	l.park(e)
	return false, 0
}

// Success forgets addr.
func (l *Limiter) Success(addr string) {
	addr = clip(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forget(addr)
}

func (l *Limiter) forget(addr string) {
	e := l.m[addr]
	if e == nil {
		return
	}
	switch {
	case e.idx >= 0:
		heap.Remove(&l.locked, int(e.idx))
	case e.idx == -1:
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

// Key is the address the limiter should count for ip: an IPv4 address
// (also when written IPv4-mapped) as it is, an IPv6 address cut to its first
// v6Prefix bits ("2001:db8:1:2::/64"), as one host or one LAN commonly holds
// a whole /64 and would otherwise get unlimited guesses. Anything that is
// not an IP is returned as it is.
func Key(ip string, v6Prefix int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	return KeyAddr(a, v6Prefix)
}

// KeyAddr is Key for a parsed address.
func KeyAddr(a netip.Addr, v6Prefix int) string {
	a = a.Unmap().WithZone("")
	if a.Is4() || v6Prefix <= 0 || v6Prefix >= 128 {
		return a.String()
	}
	p, err := a.Prefix(v6Prefix)
	if err != nil {
		return a.String()
	}
	return p.String()
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

// park puts e, unlocked and on neither the list nor the heap, where it
// belongs: busy while it has attempts in flight, else the list's tail.
func (l *Limiter) park(e *entry) {
	if e.pending > 0 {
		e.idx = busy
		return
	}
	l.pushBack(e)
}

// tidy moves expired locks to the list and drops worthless entries from its
// head. Each entry is moved and dropped at most once per lock, so the cost
// is amortised over the calls that made the locks.
func (l *Limiter) tidy(now int64) {
	for len(l.locked) > 0 && l.locked[0].until <= now {
		l.park(heap.Pop(&l.locked).(*entry))
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

// recent counts e's failures within window before now, while level is 0.
func (e *entry) recent(now, window int64) int {
	n := 0
	for i := range int(e.n) {
		if now-e.fails[i] < window {
			n++
		}
	}
	return n
}

// soonestEnd is how long until a lock ends and frees a place, at least a
// second.
func (l *Limiter) soonestEnd(now int64) time.Duration {
	if len(l.locked) == 0 {
		return time.Second
	}
	return max(time.Second, time.Duration(l.locked[0].until-now))
}

// add starts tracking addr, evicting the list head when the table is full
// and reusing its memory; it returns nil when the table is full and the list
// empty, as locked and busy entries are never evicted. The new entry is on
// neither the list nor the heap.
func (l *Limiter) add(addr string) *entry {
	var e *entry
	if len(l.m) >= l.maxEntries {
		if e = l.head; e == nil {
			return nil
		}
		l.unlink(e)
		delete(l.m, e.addr)
	} else {
		e = &entry{fails: make([]int64, l.maxFailures)}
	}
	// Clone so that the table never pins a larger string the key was cut from.
	*e = entry{addr: strings.Clone(addr), fails: e.fails, idx: -1}
	l.m[e.addr] = e
	return e
}

// insertSorted puts e, on neither the list nor the heap, on the list where
// its activity belongs. An entry back from busy without a new failure is
// older than the tail; the walk from the tail is short, as such an entry's
// activity is at most as old as the attempts in flight.
func (l *Limiter) insertSorted(e *entry) {
	at := l.tail
	for at != nil && at.activity() > e.activity() {
		at = at.prev
	}
	if at == l.tail {
		l.pushBack(e)
		return
	}
	e.idx = -1
	e.prev = at
	if at == nil {
		e.next, l.head = l.head, e
	} else {
		e.next, at.next = at.next, e
	}
	e.next.prev = e
}

// pushBack appends e, most recent activity, to the list.
func (l *Limiter) pushBack(e *entry) {
	e.idx = -1
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
