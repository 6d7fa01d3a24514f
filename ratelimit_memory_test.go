package passwordless

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestLimiter returns a MemoryLimiter configured by cfg that reads a
// fake clock, and the clock.
func newTestLimiter(t testing.TB, cfg MemoryLimiterConfig) (*MemoryLimiter, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg.Now = clock.Now
	return NewMemoryLimiter(cfg), clock
}

func mustTake(t testing.TB, l *MemoryLimiter, key string, limit Limit) Decision {
	t.Helper()
	d, err := l.Take(context.Background(), key, limit)
	if err != nil {
		t.Fatalf("Take(%q, %+v) error = %v, want nil", key, limit, err)
	}
	return d
}

func mustPeek(t testing.TB, l *MemoryLimiter, key string, limit Limit) Decision {
	t.Helper()
	d, err := l.Peek(context.Background(), key, limit)
	if err != nil {
		t.Fatalf("Peek(%q, %+v) error = %v, want nil", key, limit, err)
	}
	return d
}

func mustRefund(t testing.TB, l *MemoryLimiter, key string, limit Limit) {
	t.Helper()
	if err := l.Refund(context.Background(), key, limit); err != nil {
		t.Fatalf("Refund(%q, %+v) error = %v, want nil", key, limit, err)
	}
}

// limiterStep is one call in a scripted sequence against a MemoryLimiter.
type limiterStep struct {
	advance time.Duration // added to the clock before the call
	op      string        // "take", "peek" or "refund"
	key     string        // "k" if empty
	want    Decision      // ignored for "refund"
}

func allowed(remaining int, reset, retryAfter time.Duration) Decision {
	return Decision{Allowed: true, Limit: 5, Remaining: remaining, Reset: reset, RetryAfter: retryAfter}
}

func rejected(reset, retryAfter time.Duration) Decision {
	return Decision{Allowed: false, Limit: 5, Remaining: 0, Reset: reset, RetryAfter: retryAfter}
}

// takeFive drains a budget of 5 events per 5 s, the limit of most cases in
// TestMemoryLimiterSteps, in five takes at one instant.
func takeFive() []limiterStep {
	return []limiterStep{
		{op: "take", want: allowed(4, 1*time.Second, 0)},
		{op: "take", want: allowed(3, 2*time.Second, 0)},
		{op: "take", want: allowed(2, 3*time.Second, 0)},
		{op: "take", want: allowed(1, 4*time.Second, 0)},
		{op: "take", want: allowed(0, 5*time.Second, time.Second)},
	}
}

func steps(groups ...[]limiterStep) []limiterStep {
	var all []limiterStep
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

func TestMemoryLimiterSteps(t *testing.T) {
	fivePerFiveSeconds := Limit{Quota: 5, Window: 5 * time.Second}

	tests := []struct {
		name  string
		limit Limit
		steps []limiterStep
	}{
		{
			name:  "sixth take rejected",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "rejected take consumes nothing",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
				{op: "take", want: rejected(5*time.Second, time.Second)},
				{advance: time.Second, op: "take", want: allowed(0, 5*time.Second, time.Second)},
			}),
		},
		{
			name:  "one event back after interval",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{advance: 999 * time.Millisecond, op: "take", want: rejected(4001*time.Millisecond, time.Millisecond)},
				{advance: time.Millisecond, op: "take", want: allowed(0, 5*time.Second, time.Second)},
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "two events back after two intervals",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{advance: 2500 * time.Millisecond, op: "take", want: allowed(1, 3500*time.Millisecond, 0)},
				{op: "take", want: allowed(0, 4500*time.Millisecond, 500*time.Millisecond)},
				{op: "take", want: rejected(4500*time.Millisecond, 500*time.Millisecond)},
			}),
		},
		{
			name:  "full budget after window",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{advance: 5 * time.Second, op: "peek", want: allowed(4, time.Second, 0)},
			}, takeFive()),
		},
		{
			name:  "idle time beyond window adds nothing",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{advance: time.Hour, op: "peek", want: allowed(4, time.Second, 0)},
			}, takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "peek does not consume",
			limit: fivePerFiveSeconds,
			steps: []limiterStep{
				{op: "peek", want: allowed(4, time.Second, 0)},
				{op: "peek", want: allowed(4, time.Second, 0)},
				{op: "take", want: allowed(4, time.Second, 0)},
				{op: "peek", want: allowed(3, 2*time.Second, 0)},
				{op: "peek", want: allowed(3, 2*time.Second, 0)},
				{op: "take", want: allowed(3, 2*time.Second, 0)},
			},
		},
		{
			name:  "peek on drained budget",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{op: "peek", want: rejected(5*time.Second, time.Second)},
				{advance: time.Second, op: "peek", want: allowed(0, 5*time.Second, time.Second)},
				{op: "take", want: allowed(0, 5*time.Second, time.Second)},
			}),
		},
		{
			name:  "refund returns one event",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{op: "refund"},
				{op: "peek", want: allowed(0, 5*time.Second, time.Second)},
				{op: "take", want: allowed(0, 5*time.Second, time.Second)},
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "refund after partial recovery",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{advance: 2500 * time.Millisecond, op: "refund"},
				{op: "take", want: allowed(2, 2500*time.Millisecond, 0)},
				{op: "take", want: allowed(1, 3500*time.Millisecond, 0)},
				{op: "take", want: allowed(0, 4500*time.Millisecond, 500*time.Millisecond)},
				{op: "take", want: rejected(4500*time.Millisecond, 500*time.Millisecond)},
			}),
		},
		{
			name:  "refund never exceeds quota",
			limit: fivePerFiveSeconds,
			steps: steps([]limiterStep{
				{op: "take", want: allowed(4, time.Second, 0)},
				{op: "refund"},
				{op: "refund"},
				{op: "refund"},
				{op: "peek", want: allowed(4, time.Second, 0)},
			}, takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "refund stops at full budget",
			limit: fivePerFiveSeconds,
			steps: steps([]limiterStep{
				{op: "take", want: allowed(4, time.Second, 0)},
				{op: "take", want: allowed(3, 2*time.Second, 0)},
				// Only half an event is missing, so one refund fills the
				// budget and a second one does nothing.
				{advance: 1500 * time.Millisecond, op: "refund"},
				{op: "refund"},
			}, takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "refund of untracked key",
			limit: fivePerFiveSeconds,
			steps: steps([]limiterStep{
				{op: "refund", key: "other"},
				{op: "peek", key: "other", want: allowed(4, time.Second, 0)},
			}, takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
			}),
		},
		{
			name:  "separate keys separate budgets",
			limit: fivePerFiveSeconds,
			steps: steps(takeFive(), []limiterStep{
				{op: "take", want: rejected(5*time.Second, time.Second)},
				{op: "take", key: "other", want: allowed(4, time.Second, 0)},
				{op: "refund", key: "other"},
				{op: "take", want: rejected(5*time.Second, time.Second)},
				{op: "peek", key: "third", want: allowed(4, time.Second, 0)},
			}),
		},
		{
			name:  "interval rounded down",
			limit: Limit{Quota: 3, Window: time.Second},
			steps: []limiterStep{
				{op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 333333333}},
				{op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 666666666}},
				{op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 999999999, RetryAfter: 333333333}},
				{op: "take", want: Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 999999999, RetryAfter: 333333333}},
				{advance: 333333333, op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 999999999, RetryAfter: 333333333}},
			},
		},
		{
			name:  "interval at least one nanosecond",
			limit: Limit{Quota: 3, Window: 2},
			steps: []limiterStep{
				{op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 1}},
				{op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 2}},
				{op: "take", want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 3, RetryAfter: 1}},
				{op: "take", want: Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 3, RetryAfter: 1}},
			},
		},
		{
			name:  "longest window",
			limit: Limit{Quota: 1, Window: 1<<63 - 1},
			steps: []limiterStep{
				{op: "take", want: Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: 1 << 60, RetryAfter: 1 << 60}},
				{op: "take", want: Decision{Allowed: false, Limit: 1, Remaining: 0, Reset: 1 << 60, RetryAfter: 1 << 60}},
				{advance: 1<<60 - 1, op: "take", want: Decision{Allowed: false, Limit: 1, Remaining: 0, Reset: 1, RetryAfter: 1}},
				{advance: 1, op: "take", want: Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: 1 << 60, RetryAfter: 1 << 60}},
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLimiter(t, MemoryLimiterConfig{})
			for i, step := range tt.steps {
				clock.Advance(step.advance)
				key := step.key
				if key == "" {
					key = "k"
				}

				var got Decision
				switch step.op {
				case "take":
					got = mustTake(t, l, key, tt.limit)
				case "peek":
					got = mustPeek(t, l, key, tt.limit)
				case "refund":
					mustRefund(t, l, key, tt.limit)
					continue
				default:
					t.Fatalf("step %d: unknown op %q", i, step.op)
				}
				if got != step.want {
					t.Errorf("step %d: %s(%q) = %+v, want %+v", i, step.op, key, got, step.want)
				}
			}
		})
	}
}

func TestMemoryLimiterDisabledLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
	}{
		{name: "zero limit", limit: Limit{}},
		{name: "zero quota", limit: Limit{Quota: 0, Window: time.Minute}},
		{name: "zero window", limit: Limit{Quota: 5, Window: 0}},
		{name: "negative quota", limit: Limit{Quota: -1, Window: time.Minute}},
		{name: "negative window", limit: Limit{Quota: 5, Window: -time.Minute}},
	}

	want := Decision{Allowed: true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(t, MemoryLimiterConfig{})
			for i := range 20 {
				if got := mustTake(t, l, "k", tt.limit); got != want {
					t.Fatalf("take %d: Take = %+v, want %+v", i+1, got, want)
				}
			}
			if got := mustPeek(t, l, "k", tt.limit); got != want {
				t.Errorf("Peek = %+v, want %+v", got, want)
			}
			mustRefund(t, l, "k", tt.limit)
			if got := l.Len(); got != 0 {
				t.Errorf("Len = %d, want 0: a disabled limit tracks no key", got)
			}
		})
	}
}

func TestMemoryLimiterConcurrentTake(t *testing.T) {
	const (
		goroutines = 128
		takesEach  = 4
		quota      = 100
	)
	limit := Limit{Quota: quota, Window: time.Hour}
	l, _ := newTestLimiter(t, MemoryLimiterConfig{})

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []Decision
	)
	start := make(chan struct{})
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range takesEach {
				d, err := l.Take(context.Background(), "shared", limit)
				if err != nil {
					t.Errorf("Take error = %v, want nil", err)
					return
				}
				mu.Lock()
				results = append(results, d)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()

	// Each admitted take must have seen a distinct Remaining, from quota-1
	// down to 0, or two goroutines consumed the same event.
	admitted := 0
	seenRemaining := make(map[int]int)
	for _, d := range results {
		if d.Allowed {
			admitted++
			seenRemaining[d.Remaining]++
		}
	}
	if admitted != quota {
		t.Errorf("admitted %d of %d takes, want exactly %d", admitted, len(results), quota)
	}
	for remaining := range quota {
		if n := seenRemaining[remaining]; n != 1 {
			t.Errorf("Remaining %d reported by %d admitted takes, want 1", remaining, n)
		}
	}
	if got := mustTake(t, l, "shared", limit); got.Allowed {
		t.Errorf("Take after %d admitted = %+v, want rejected", admitted, got)
	}
}

func TestMemoryLimiterConcurrentKeys(t *testing.T) {
	const (
		goroutines = 64
		keys       = 16
		quota      = 10
	)
	limit := Limit{Quota: quota, Window: time.Hour}
	l, _ := newTestLimiter(t, MemoryLimiterConfig{})

	var wg sync.WaitGroup
	admitted := make([]atomic.Int64, keys)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 * keys {
				k := (g + i) % keys
				d, err := l.Take(context.Background(), fmt.Sprintf("key-%d", k), limit)
				if err != nil {
					t.Errorf("Take error = %v, want nil", err)
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		}()
	}
	wg.Wait()

	for k := range admitted {
		if got := admitted[k].Load(); got != quota {
			t.Errorf("key-%d admitted %d times, want %d", k, got, quota)
		}
	}
}

func TestMemoryLimiterMaxKeysFlood(t *testing.T) {
	const (
		maxKeys = 1000
		flood   = 100_000
	)
	limit := Limit{Quota: 5, Window: time.Minute}
	l, clock := newTestLimiter(t, MemoryLimiterConfig{MaxKeys: maxKeys})

	// A key with a spent budget must survive the flood.
	for range 5 {
		mustTake(t, l, "victim", limit)
	}

	floodKeys := func(prefix string) (admitted int) {
		t.Helper()
		for i := range flood {
			d := mustTake(t, l, fmt.Sprintf("%s-%d", prefix, i), limit)
			if d.Allowed {
				admitted++
			} else if d.RetryAfter <= 0 || d.RetryAfter > limit.Window {
				t.Fatalf("key %d rejected with RetryAfter %v, want in (0, %v]", i, d.RetryAfter, limit.Window)
			}
			if i%1000 == 0 {
				if n := l.Len(); n > maxKeys {
					t.Fatalf("after %d keys Len = %d, want at most %d", i+1, n, maxKeys)
				}
			}
		}
		return admitted
	}

	if got, want := floodKeys("first"), maxKeys-1; got != want {
		t.Errorf("first flood admitted %d keys, want %d (MaxKeys less the victim)", got, want)
	}
	if got := l.Len(); got != maxKeys {
		t.Errorf("Len after first flood = %d, want %d", got, maxKeys)
	}
	if got := mustTake(t, l, "victim", limit); got.Allowed {
		t.Errorf("victim Take after first flood = %+v, want rejected: its spent budget was dropped", got)
	}

	// Every budget is full again after the window, so sweeps make room.
	clock.Advance(limit.Window)
	if got, want := floodKeys("second"), maxKeys; got != want {
		t.Errorf("second flood admitted %d keys, want %d", got, want)
	}
	if got := l.Len(); got != maxKeys {
		t.Errorf("Len after second flood = %d, want %d", got, maxKeys)
	}
}

func TestMemoryLimiterSweepSchedule(t *testing.T) {
	// One shard of 32 keys waits for 32/16 = 2 idle keys before it sweeps.
	limit := Limit{Quota: 1, Window: time.Minute}
	l, clock := newTestLimiter(t, MemoryLimiterConfig{MaxKeys: 32, Shards: 1})

	// Key i is taken at second i, so its budget is full at second 60+i.
	for i := range 32 {
		if d := mustTake(t, l, fmt.Sprintf("old-%d", i), limit); !d.Allowed {
			t.Fatalf("old-%d rejected: %+v", i, d)
		}
		clock.Advance(time.Second)
	}

	// Second 32: nothing is idle, and the second-earliest TAT is second 61.
	tests := []struct {
		name    string
		advance time.Duration
		key     string
		want    Decision
	}{
		{
			name: "full shard rejects new key",
			key:  "new-1",
			want: Decision{Limit: 1, Reset: 29 * time.Second, RetryAfter: 29 * time.Second},
		},
		{
			name: "tracked key decided by budget",
			key:  "old-31",
			want: Decision{Limit: 1, Reset: 59 * time.Second, RetryAfter: 59 * time.Second},
		},
		{
			name:    "one idle key waits for second",
			advance: 28500 * time.Millisecond, // second 60.5: old-0 is idle
			key:     "new-1",
			want:    Decision{Limit: 1, Reset: 500 * time.Millisecond, RetryAfter: 500 * time.Millisecond},
		},
		{
			name:    "sweep admits first new key",
			advance: 500 * time.Millisecond, // second 61: old-0 and old-1 are idle
			key:     "new-1",
			want:    Decision{Allowed: true, Limit: 1, Reset: time.Minute, RetryAfter: time.Minute},
		},
		{
			name: "sweep admits second new key",
			key:  "new-2",
			want: Decision{Allowed: true, Limit: 1, Reset: time.Minute, RetryAfter: time.Minute},
		},
		{
			// The kept keys old-2 and old-3 go idle at seconds 62 and 63.
			name: "third new key waits",
			key:  "new-3",
			want: Decision{Limit: 1, Reset: 2 * time.Second, RetryAfter: 2 * time.Second},
		},
		{
			name:    "next sweep on schedule",
			advance: 2 * time.Second,
			key:     "new-3",
			want:    Decision{Allowed: true, Limit: 1, Reset: time.Minute, RetryAfter: time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			if got := mustPeek(t, l, tt.key, limit); got != tt.want {
				t.Errorf("Peek(%q) = %+v, want %+v", tt.key, got, tt.want)
			}
			if got := mustTake(t, l, tt.key, limit); got != tt.want {
				t.Errorf("Take(%q) = %+v, want %+v", tt.key, got, tt.want)
			}
			if got := l.Len(); got > 32 {
				t.Errorf("Len = %d, want at most 32", got)
			}
		})
	}
}

func TestNewMemoryLimiterConfig(t *testing.T) {
	tests := []struct {
		name           string
		cfg            MemoryLimiterConfig
		wantShards     int
		wantCapacities []int // first shards' capacities, if set
		wantTotal      int
	}{
		{name: "defaults", cfg: MemoryLimiterConfig{}, wantShards: 64, wantTotal: 1 << 20},
		{name: "negative values", cfg: MemoryLimiterConfig{MaxKeys: -1, Shards: -1}, wantShards: 64, wantTotal: 1 << 20},
		{name: "uneven split", cfg: MemoryLimiterConfig{MaxKeys: 10, Shards: 4}, wantShards: 4, wantCapacities: []int{3, 3, 2, 2}, wantTotal: 10},
		{name: "more shards than keys", cfg: MemoryLimiterConfig{MaxKeys: 3, Shards: 8}, wantShards: 3, wantCapacities: []int{1, 1, 1}, wantTotal: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewMemoryLimiter(tt.cfg)
			if got := len(l.shards); got != tt.wantShards {
				t.Errorf("shards = %d, want %d", got, tt.wantShards)
			}
			total := 0
			for i := range l.shards {
				capacity := l.shards[i].capacity
				total += capacity
				if i < len(tt.wantCapacities) && capacity != tt.wantCapacities[i] {
					t.Errorf("shard %d capacity = %d, want %d", i, capacity, tt.wantCapacities[i])
				}
			}
			if total != tt.wantTotal {
				t.Errorf("total capacity = %d, want %d", total, tt.wantTotal)
			}
		})
	}
}

func TestMemoryLimiterSystemClock(t *testing.T) {
	l := NewMemoryLimiter(MemoryLimiterConfig{})
	limit := Limit{Quota: 2, Window: time.Hour}

	for i, wantAllowed := range []bool{true, true, false} {
		d, err := l.Take(context.Background(), "k", limit)
		if err != nil {
			t.Fatalf("take %d: error = %v, want nil", i+1, err)
		}
		if d.Allowed != wantAllowed {
			t.Errorf("take %d: Allowed = %v, want %v", i+1, d.Allowed, wantAllowed)
		}
	}
}

func TestMemoryLimiterClockBeforeCreation(t *testing.T) {
	limit := Limit{Quota: 1, Window: time.Minute}
	l, clock := newTestLimiter(t, MemoryLimiterConfig{})

	mustTake(t, l, "k", limit)
	clock.Advance(-time.Hour)
	// The limiter reads the clock as the instant of its creation, so the
	// budget is still spent and a minute from full.
	want := Decision{Limit: 1, Reset: time.Minute, RetryAfter: time.Minute}
	if got := mustTake(t, l, "k", limit); got != want {
		t.Errorf("Take = %+v, want %+v", got, want)
	}
}

// clusteredHash returns a nonzero hash whose low bits often fall next to
// those of other such hashes, at both ends of the table, so that clusters
// form and wrap around.
func clusteredHash(rng *rand.Rand) uint64 {
	if rng.IntN(2) == 0 {
		return rng.Uint64() | 1
	}
	lowBits := []uint64{62, 63, 0, 1}[rng.IntN(4)]
	return uint64(rng.IntN(1000)+1)<<32 | lowBits
}

// checkTable fails the test unless table holds exactly the entries of want,
// each reachable by find.
func checkTable(t *testing.T, table *tatTable, want map[uint64]int64) {
	t.Helper()
	if table.count != len(want) {
		t.Fatalf("count = %d, want %d", table.count, len(want))
	}
	for hash, tat := range want {
		i, found := table.find(hash)
		if !found {
			t.Fatalf("find(%#x) found nothing, want TAT %d", hash, tat)
		}
		if got := table.slots[i].tat; got != tat {
			t.Fatalf("TAT of %#x = %d, want %d", hash, got, tat)
		}
	}
	occupied := 0
	for _, slot := range table.slots {
		if slot.hash == 0 {
			continue
		}
		occupied++
		if _, ok := want[slot.hash]; !ok {
			t.Fatalf("table holds %#x, want it absent", slot.hash)
		}
	}
	if occupied != len(want) {
		t.Fatalf("occupied slots = %d, want %d", occupied, len(want))
	}
}

func TestTatTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	table := tatTable{slots: make([]tatSlot, minTableSlots)}
	want := map[uint64]int64{}

	for step := range 20_000 {
		hash := clusteredHash(rng)
		i, found := table.find(hash)
		_, wantFound := want[hash]
		if found != wantFound {
			t.Fatalf("step %d: find(%#x) found = %v, want %v", step, hash, found, wantFound)
		}

		switch {
		case found && rng.IntN(2) == 0:
			table.deleteAt(i)
			delete(want, hash)
		case found:
			table.slots[i].tat = int64(step)
			want[hash] = int64(step)
		case len(want) < 300:
			table.insert(i, hash, int64(step))
			want[hash] = int64(step)
		}
		if step%500 == 0 {
			checkTable(t, &table, want)
		}
	}
	checkTable(t, &table, want)
}

func TestMemoryShardSweep(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		keys     int
	}{
		{name: "small shard", capacity: 40, keys: 40},
		{name: "partly filled", capacity: 1000, keys: 700},
		{name: "full shard", capacity: 1000, keys: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			s := &memoryShard{capacity: tt.capacity, table: tatTable{slots: make([]tatSlot, minTableSlots)}}
			want := map[uint64]int64{}
			for len(want) < tt.keys {
				hash := clusteredHash(rng)
				if i, found := s.table.find(hash); !found {
					tat := rng.Int64N(1000)
					s.table.insert(i, hash, tat)
					want[hash] = tat
				}
			}

			const now = 500
			s.sweep(now)

			var keptTATs []int64
			for hash, tat := range want {
				if tat <= now {
					delete(want, hash)
				} else {
					keptTATs = append(keptTATs, tat)
				}
			}
			checkTable(t, &s.table, want)

			slices.Sort(keptTATs)
			keep := max(tt.capacity/16, 1)
			wantNext := int64(now)
			if len(keptTATs) >= keep {
				wantNext = keptTATs[keep-1]
			}
			if s.nextSweep != wantNext {
				t.Errorf("nextSweep = %d, want %d (TAT number %d of %d kept)", s.nextSweep, wantNext, keep, len(keptTATs))
			}
		})
	}
}

func TestMemoryLimiterAllocs(t *testing.T) {
	limit := Limit{Quota: 1000, Window: time.Second}
	l, _ := newTestLimiter(t, MemoryLimiterConfig{})
	ctx := context.Background()

	newKeys := benchmarkKeys(10_000)
	next := 0
	tests := []struct {
		name string
		call func()
	}{
		{name: "take tracked key", call: func() { l.Take(ctx, "tracked", limit) }},
		{name: "peek tracked key", call: func() { l.Peek(ctx, "tracked", limit) }},
		{name: "refund tracked key", call: func() { l.Refund(ctx, "tracked", limit) }},
		{name: "take new key", call: func() {
			// A new key allocates only when its shard's table grows, which
			// is rare enough that the average rounds down to zero.
			l.Take(ctx, newKeys[next], limit)
			next++
		}},
	}
	mustTake(t, l, "tracked", limit)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(1000, tt.call); got != 0 {
				t.Errorf("allocations per call = %v, want 0", got)
			}
		})
	}
}

func TestMemoryLimiterBytesPerKey(t *testing.T) {
	const keys = 1 << 17
	limit := Limit{Quota: 5, Window: time.Hour}
	names := benchmarkKeys(keys)

	got := measureBytesPerKey(t, names, limit)
	t.Logf("%.1f bytes per tracked key", got)
	if got >= 100 {
		t.Errorf("bytes per tracked key = %.1f, want below 100", got)
	}
}

// measureBytesPerKey takes one event for each of keys in a new limiter and
// returns the growth of the live heap divided by the number of keys.
func measureBytesPerKey(t testing.TB, keys []string, limit Limit) float64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	l, _ := newTestLimiter(t, MemoryLimiterConfig{MaxKeys: 2 * len(keys)})
	for _, key := range keys {
		mustTake(t, l, key, limit)
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := l.Len(); got != len(keys) {
		t.Fatalf("Len = %d, want %d", got, len(keys))
	}
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(len(keys))
}

var (
	benchmarkKeysMu    sync.Mutex
	benchmarkKeysCache = map[int][]string{}
)

// benchmarkKeys returns n distinct keys shaped like the service's keys, a
// policy name and a hex value. Repeated calls share one slice.
func benchmarkKeys(n int) []string {
	benchmarkKeysMu.Lock()
	defer benchmarkKeysMu.Unlock()
	if keys, ok := benchmarkKeysCache[n]; ok {
		return keys
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("verify:%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	benchmarkKeysCache[n] = keys
	return keys
}

func BenchmarkMemoryLimiter(b *testing.B) {
	// The quota is far above the decision rate, so the benchmark measures
	// admitted decisions rather than rejections.
	limit := Limit{Quota: 1_000_000_000_000, Window: time.Hour}
	ctx := context.Background()

	for _, n := range []int{1, 10_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := benchmarkKeys(n)
			l := NewMemoryLimiter(MemoryLimiterConfig{MaxKeys: 2 * n})
			for _, key := range keys {
				l.Take(ctx, key, limit)
			}

			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					l.Take(ctx, keys[i%n], limit)
					i++
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				var offset atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					// Goroutines start far apart in keys so that they do
					// not walk the same keys in step.
					i := int(offset.Add(7919))
					for pb.Next() {
						l.Take(ctx, keys[i%n], limit)
						i++
					}
				})
			})
		})
	}
}
