package passwordless

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
	"time"
)

// Defaults for the zero fields of MemoryLimiterConfig.
const (
	defaultMemoryMaxKeys = 1 << 20
	defaultMemoryShards  = 64
)

// MemoryLimiterConfig configures a MemoryLimiter. The zero value selects
// every default.
type MemoryLimiterConfig struct {
	// MaxKeys is the maximum number of keys the limiter tracks at once.
	// Zero or negative means 1<<20 (1,048,576).
	MaxKeys int

	// Shards is the number of separately locked partitions of the key
	// space. Each shard tracks at most its even share of MaxKeys. Zero or
	// negative means 64. A value above MaxKeys is lowered to MaxKeys, so
	// that every shard can track at least one key.
	Shards int

	// Now returns the current time. Nil means time.Now. It must be safe for
	// concurrent use. The limiter measures time from the instant it was
	// created, and treats a reading earlier than that instant as that
	// instant.
	Now func() time.Time
}

// MemoryLimiter is a RateLimiter that keeps its budgets in process memory.
// It never returns an error. Create one with NewMemoryLimiter, because the
// zero value is not usable. A MemoryLimiter is safe for concurrent use.
//
// # Algorithm
//
// MemoryLimiter implements the generic cell rate algorithm (GCRA). For each
// key it stores one int64, the theoretical arrival time (TAT): the instant
// at which the key's budget is full again. With the emission interval
// T = Window/Quota, an event at time now is admitted when
// max(TAT, now) + T - now <= Quota*T, and admitting it sets TAT to
// max(TAT, now) + T. A sliding-window log would store a timestamp per
// event, a sliding-window counter only approximates the limit, and a token
// bucket needs a token count and an update time per key. GCRA is exact with
// a single integer per key, needs no floating point, and needs no timer,
// because a key whose TAT has passed simply has a full budget.
//
// T is rounded down to whole nanoseconds and is at least one nanosecond,
// so a budget refills in Quota*T, which can be up to Quota nanoseconds
// shorter than Window. A limit of more than one event per nanosecond is
// treated as exactly one per nanosecond. Windows above 2⁶⁰ nanoseconds
// (about 36 years) and quotas above 2⁶⁰ events are treated as 2⁶⁰, and the
// limiter's clock stops 2⁶² nanoseconds (about 146 years) after the limiter
// was created, so the arithmetic cannot overflow.
//
// # Keys
//
// Keys are hashed with hash/maphash under a random seed chosen for each
// limiter. The shards store the 64-bit hash in place of the key string, in
// open-addressing tables of 16-byte slots that are kept at most three
// quarters full, so a tracked key takes 21 to 43 bytes of table. A decision
// allocates only when a table grows or a shard is swept for the first time.
// Two keys whose hashes collide share one budget, so each may be rejected
// early. Among n tracked keys the chance of any collision is about n²/2⁶⁵,
// which is about 3·10⁻⁸ for a million keys. maphash is not a cryptographic
// hash, so this estimate holds for keys chosen without knowledge of the
// seed, which never leaves the process.
//
// # Memory bound
//
// A key whose TAT has passed has a full budget and carries no state, so the
// limiter may drop it. The limiter never drops a key whose budget is partly
// spent, because that would refill a budget that an attacker may be
// spending, such as the code-guess failures allowed for one destination.
// When a new key arrives at a full shard, Take and Peek sweep the shard's
// idle keys if a sweep is due. If the shard is still full, they reject the
// new key with Remaining 0, and with Reset and RetryAfter set to the time
// until the shard's next sweep. Keys the shard already tracks are not
// affected.
//
// A sweep visits every key of its shard, which is costly. A full shard is
// therefore swept again only once a sixteenth (and at least one) of the keys
// that the previous sweep kept have gone idle, judged by the TATs the keys
// had at that sweep. Each sweep thus makes room for many new keys, and a
// flood of new keys cannot force a sweep per request. The tables do not
// shrink, so a shard's memory stays at its peak, which MaxKeys bounds.
type MemoryLimiter struct {
	seed   maphash.Seed
	now    func() time.Time // nil means time.Since(epoch) on the monotonic clock
	epoch  time.Time
	shards []memoryShard
}

var _ RateLimiter = (*MemoryLimiter)(nil)

// memoryShard is one locked partition of a MemoryLimiter's keys.
type memoryShard struct {
	mu sync.Mutex

	// table maps a key's hash to its TAT in nanoseconds since the limiter's
	// epoch. Keys leave the table only in sweep.
	table    tatTable
	capacity int

	// nextSweep is the earliest time, in nanoseconds since the epoch, at
	// which a full shard is swept again.
	nextSweep int64
	// sweepHeap is sweep's reusable max-heap of the smallest TATs kept.
	sweepHeap []int64

	// The padding keeps the locks of neighbouring shards in different
	// cache lines.
	_ [64]byte
}

// NewMemoryLimiter returns a MemoryLimiter configured by cfg.
func NewMemoryLimiter(cfg MemoryLimiterConfig) *MemoryLimiter {
	maxKeys := cfg.MaxKeys
	if maxKeys <= 0 {
		maxKeys = defaultMemoryMaxKeys
	}
	shardCount := cfg.Shards
	if shardCount <= 0 {
		shardCount = defaultMemoryShards
	}
	shardCount = min(shardCount, maxKeys)

	l := &MemoryLimiter{
		seed:   maphash.MakeSeed(),
		now:    cfg.Now,
		shards: make([]memoryShard, shardCount),
	}
	if l.now == nil {
		l.epoch = time.Now()
	} else {
		l.epoch = l.now()
	}

	// Spread MaxKeys over the shards so that the capacities add up to it.
	for i := range l.shards {
		capacity := maxKeys / shardCount
		if i < maxKeys%shardCount {
			capacity++
		}
		l.shards[i].capacity = capacity
		l.shards[i].table.slots = make([]tatSlot, minTableSlots)
	}
	return l
}

// Take consumes one event from the key's budget if the budget has one left
// and reports the result. A disabled limit always allows, with the other
// fields of the Decision zero. Take rejects a key that the limiter does not
// track yet when the key's shard is full of keys with spent budgets, as the
// MemoryLimiter documentation describes. The error is always nil.
func (l *MemoryLimiter) Take(ctx context.Context, key string, limit Limit) (Decision, error) {
	return l.decide(key, limit, true), nil
}

// Peek returns the Decision that Take would return at the same instant,
// without consuming anything. It may sweep idle keys, which changes no
// budget. The error is always nil.
func (l *MemoryLimiter) Peek(ctx context.Context, key string, limit Limit) (Decision, error) {
	return l.decide(key, limit, false), nil
}

// Refund returns one event to the key's budget, but never fills the budget
// past its quota. Refunding a key that the limiter does not track, or with a
// disabled limit, does nothing. The error is always nil.
func (l *MemoryLimiter) Refund(ctx context.Context, key string, limit Limit) error {
	if !limit.Enabled() {
		return nil
	}
	interval := newGCRA(limit).interval
	now := l.clock()
	hash, s := l.shardOf(key)

	s.mu.Lock()
	defer s.mu.Unlock()

	i, tracked := s.table.find(hash)
	if !tracked || s.table.slots[i].tat <= now {
		return nil
	}
	// A TAT at or before now means a full budget, so stop there. The key
	// stays in the table until a sweep removes it.
	s.table.slots[i].tat = max(s.table.slots[i].tat-interval, now)
	return nil
}

// Len returns the number of keys the limiter tracks, including idle keys
// that no sweep has removed yet.
func (l *MemoryLimiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.table.count
		s.mu.Unlock()
	}
	return n
}

// decide computes the Decision for one event and, if consume is set and the
// event is admitted, records it.
func (l *MemoryLimiter) decide(key string, limit Limit, consume bool) Decision {
	if !limit.Enabled() {
		return Decision{Allowed: true}
	}
	g := newGCRA(limit)
	// The clock is read outside the lock. A goroutine that reaches the lock
	// late therefore decides with a slightly earlier time, which can only
	// make the limit stricter.
	now := l.clock()
	hash, s := l.shardOf(key)

	s.mu.Lock()
	i, tracked := s.table.find(hash)
	var tat int64
	if tracked {
		tat = s.table.slots[i].tat
	} else if s.table.count >= s.capacity {
		wait := s.makeRoom(now)
		if wait > 0 {
			s.mu.Unlock()
			return Decision{Limit: limit.Quota, Reset: wait, RetryAfter: wait}
		}
		// The sweep moved entries, so the free slot for hash may have moved.
		i, _ = s.table.find(hash)
	}

	allowed, tat := g.decide(tat, now)
	if consume && allowed {
		if tracked {
			s.table.slots[i].tat = tat
		} else {
			s.table.insert(i, hash, tat)
		}
	}
	s.mu.Unlock()

	// The Decision is computed outside the lock to keep the critical
	// section short.
	return g.decision(allowed, tat, now)
}

// clock returns the current time in nanoseconds since the limiter's epoch,
// clamped to [0, maxClock].
func (l *MemoryLimiter) clock() int64 {
	var elapsed time.Duration
	if l.now == nil {
		// time.Since reads only the monotonic clock, which is cheaper than
		// time.Now and immune to changes of the wall clock.
		elapsed = time.Since(l.epoch)
	} else {
		elapsed = l.now().Sub(l.epoch)
	}
	return min(max(int64(elapsed), 0), maxClock)
}

// shardOf returns the hash of key and the shard that tracks it.
func (l *MemoryLimiter) shardOf(key string) (uint64, *memoryShard) {
	hash := maphash.String(l.seed, key)
	if hash == 0 {
		hash = 1 // 0 marks an empty slot in tatTable
	}
	// The high word of hash*len(shards) maps the hash evenly onto the
	// shards without a division.
	index, _ := bits.Mul64(hash, uint64(len(l.shards)))
	return hash, &l.shards[index]
}

// makeRoom sweeps the full shard if its next sweep is due. It returns zero
// if the shard then has room for a new key, and otherwise the time until
// the next sweep, which is always positive. The caller holds s.mu.
func (s *memoryShard) makeRoom(now int64) time.Duration {
	if now >= s.nextSweep {
		s.sweep(now)
		if s.table.count < s.capacity {
			return 0
		}
	}
	return time.Duration(s.nextSweep - now)
}

// sweep deletes the shard's idle keys and sets nextSweep to the time at
// which a sixteenth (and at least one) of the kept keys will be idle, by
// their current TATs. If fewer keys are kept than that, the shard has room
// for most of its capacity and may be swept as soon as it is full again.
// The caller holds s.mu.
func (s *memoryShard) sweep(now int64) {
	keep := max(s.capacity/16, 1)
	if s.sweepHeap == nil {
		s.sweepHeap = make([]int64, 0, keep)
	}
	// heap holds the smallest TATs kept so far, the largest of them at the
	// root.
	heap := s.sweepHeap[:0]

	slots := s.table.slots
	mask := len(slots) - 1
	// Scan once around the table, starting after an empty slot. No cluster
	// spans an empty slot, so deleteAt moves only entries that the scan has
	// not reached yet.
	start := 0
	for slots[start].hash != 0 {
		start++
	}
	for n := 0; n < len(slots); {
		i := (start + 1 + n) & mask
		slot := slots[i]
		if slot.hash == 0 {
			n++
			continue
		}
		if slot.tat <= now {
			// deleteAt may move a later entry into slot i, so look at
			// slot i again.
			s.table.deleteAt(i)
			continue
		}
		if len(heap) < keep {
			heap = append(heap, slot.tat)
			siftUp(heap, len(heap)-1)
		} else if slot.tat < heap[0] {
			heap[0] = slot.tat
			siftDown(heap, 0)
		}
		n++
	}

	s.nextSweep = now
	if len(heap) == keep {
		s.nextSweep = heap[0]
	}
	s.sweepHeap = heap[:0]
}

// siftUp restores the max-heap order of h after h[i] was appended.
func siftUp(h []int64, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent] >= h[i] {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

// siftDown restores the max-heap order of h after h[i] was lowered.
func siftDown(h []int64, i int) {
	for {
		largest := i
		left, right := 2*i+1, 2*i+2
		if left < len(h) && h[left] > h[largest] {
			largest = left
		}
		if right < len(h) && h[right] > h[largest] {
			largest = right
		}
		if largest == i {
			return
		}
		h[i], h[largest] = h[largest], h[i]
		i = largest
	}
}

// tatTable is a hash table from key hashes to TATs with open addressing and
// linear probing. A key's home slot is the low bits of its maphash value,
// which is already uniform, so the table never rehashes a key. A Take on a
// tracked key makes one probe sequence, where a Go map needs one for the
// read and another for the write.
type tatTable struct {
	slots []tatSlot // a power of two in length, with hash 0 in empty slots
	count int
}

type tatSlot struct {
	hash uint64
	tat  int64
}

// minTableSlots is the initial number of slots of a shard's table.
const minTableSlots = 8

// find returns the index of the slot holding hash and true, or the index of
// the empty slot where hash would be inserted and false.
func (t *tatTable) find(hash uint64) (int, bool) {
	mask := uint64(len(t.slots) - 1)
	// The loop ends because the table is never more than three quarters
	// full.
	for i := hash & mask; ; i = (i + 1) & mask {
		switch t.slots[i].hash {
		case hash:
			return int(i), true
		case 0:
			return int(i), false
		}
	}
}

// insert stores hash with tat in the empty slot i that find returned,
// doubling the table first if it would become more than three quarters
// full.
func (t *tatTable) insert(i int, hash uint64, tat int64) {
	if 4*(t.count+1) > 3*len(t.slots) {
		t.grow()
		i, _ = t.find(hash)
	}
	t.slots[i] = tatSlot{hash: hash, tat: tat}
	t.count++
}

func (t *tatTable) grow() {
	old := t.slots
	t.slots = make([]tatSlot, 2*len(old))
	for _, slot := range old {
		if slot.hash != 0 {
			i, _ := t.find(slot.hash)
			t.slots[i] = slot
		}
	}
}

// deleteAt empties slot i by backward-shift deletion: each later entry of
// the same cluster whose probe sequence passes the hole moves into it, so
// that lookups need no tombstones.
func (t *tatTable) deleteAt(i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].hash != 0; j = (j + 1) & mask {
		home := int(t.slots[j].hash & uint64(mask))
		// The entry at j probed home, home+1, ..., j. It passed the hole
		// if i is no farther back from j than home is.
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = tatSlot{}
	t.count--
}

// maxSpan bounds windows, quotas and TATs so that GCRA's arithmetic cannot
// overflow: a TAT is at most 2⁶² + 2⁶⁰ and adding an interval of at most
// 2⁶⁰ stays below 2⁶³.
const (
	maxSpan  = 1 << 60 // nanoseconds (about 36.5 years) or events
	maxClock = 1 << 62 // nanoseconds (about 146 years)
)

// gcra is a Limit in the integer nanoseconds that GCRA computes with.
type gcra struct {
	quota    int
	interval int64 // emission interval T: Window/Quota, at least 1
	window   int64 // Quota*T, the time to refill the budget from empty
}

func newGCRA(limit Limit) gcra {
	window := min(int64(limit.Window), maxSpan)
	quota := min(int64(limit.Quota), maxSpan)
	interval := max(window/quota, 1)
	return gcra{
		quota:    limit.Quota,
		interval: interval,
		// At most maxSpan: quota*interval <= window unless interval was
		// raised to 1, and then it equals quota.
		window: quota * interval,
	}
}

// decide reports whether an event at time now is admitted against a key's
// TAT (zero for an untracked key), and returns the TAT after the decision,
// which is the TAT to store if the event is admitted. Times are in
// nanoseconds since the limiter's epoch.
func (g gcra) decide(tat, now int64) (allowed bool, after int64) {
	start := max(tat, now)
	next := start + g.interval
	if next-now > g.window {
		return false, start
	}
	return true, next
}

// decision builds the Decision for a key whose TAT after the decision is
// tat.
func (g gcra) decision(allowed bool, tat, now int64) Decision {
	// untilFull is the time until the budget is full. It exceeds g.window
	// only when a hash collision shares the TAT with a longer limit.
	untilFull := tat - now
	remaining := 0
	if untilFull < g.window {
		remaining = int((g.window - untilFull) / g.interval)
	}
	// The next event is admitted once untilFull + T <= window.
	retryAfter := max(untilFull+g.interval-g.window, 0)
	return Decision{
		Allowed:    allowed,
		Limit:      g.quota,
		Remaining:  remaining,
		Reset:      time.Duration(untilFull),
		RetryAfter: time.Duration(retryAfter),
	}
}
