// Package benchmarks compares passwordless.MemoryLimiter with other
// in-memory Go rate limiters. It is a separate module so that the library's
// go.mod never requires the libraries compared here. README.md records the
// results and the command that produced them.
package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/httprate"
	"github.com/go-passwordless/passwordless"
	"github.com/sethvargo/go-limiter/memorystore"
	"golang.org/x/time/rate"
)

// keyedLimiter is the common shape of the limiters under comparison: one
// budget per key, and take consumes one event from it.
type keyedLimiter interface {
	take(key string) (allowed bool)
	close()
}

// contender names a limiter library and builds an instance of it that admits
// quota events per window for each key.
type contender struct {
	name string
	new  func(tb testing.TB, quota int, window time.Duration) keyedLimiter
}

var contenders = []contender{
	{name: "passwordless", new: newPasswordless},
	{name: "x-time-rate", new: newXTimeRate},
	{name: "httprate", new: newHTTPRate},
	{name: "go-limiter", new: newGoLimiter},
}

// passwordlessLimiter wraps passwordless.MemoryLimiter.
type passwordlessLimiter struct {
	limiter *passwordless.MemoryLimiter
	limit   passwordless.Limit
}

func newPasswordless(tb testing.TB, quota int, window time.Duration) keyedLimiter {
	// MaxKeys is raised above the default of 1<<20 so that the 1M-key runs
	// never reach a full shard.
	l := passwordless.NewMemoryLimiter(passwordless.MemoryLimiterConfig{MaxKeys: 4 << 20})
	return &passwordlessLimiter{limiter: l, limit: passwordless.Limit{Quota: quota, Window: window}}
}

func (p *passwordlessLimiter) take(key string) bool {
	d, _ := p.limiter.Take(context.Background(), key, p.limit)
	return d.Allowed
}

func (p *passwordlessLimiter) close() {}

// xTimeRateLimiter keeps one *rate.Limiter per key in a map guarded by a
// mutex, the usual way to limit by key with golang.org/x/time/rate.
type xTimeRateLimiter struct {
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	limit    rate.Limit
	burst    int
}

func newXTimeRate(tb testing.TB, quota int, window time.Duration) keyedLimiter {
	return &xTimeRateLimiter{
		limiters: make(map[string]*rate.Limiter),
		limit:    rate.Limit(float64(quota) / window.Seconds()),
		burst:    quota,
	}
}

func (x *xTimeRateLimiter) take(key string) bool {
	x.mu.Lock()
	l, ok := x.limiters[key]
	if !ok {
		l = rate.NewLimiter(x.limit, x.burst)
		x.limiters[key] = l
	}
	x.mu.Unlock()
	return l.Allow()
}

func (x *xTimeRateLimiter) close() {}

// httpRateLimiter calls httprate.RateLimiter.OnLimit, the library's public
// per-key decision, with a reused request and a response writer that
// discards everything. Its response header names are empty, so OnLimit sets
// no headers.
type httpRateLimiter struct {
	limiter *httprate.RateLimiter
	request *http.Request
	writer  discardResponseWriter
}

func newHTTPRate(tb testing.TB, quota int, window time.Duration) keyedLimiter {
	return &httpRateLimiter{
		limiter: httprate.NewRateLimiter(quota, window, httprate.WithResponseHeaders(httprate.ResponseHeaders{})),
		request: httptest.NewRequest(http.MethodPost, "/", nil),
		writer:  discardResponseWriter{header: http.Header{}},
	}
}

func (h *httpRateLimiter) take(key string) bool {
	return !h.limiter.OnLimit(h.writer, h.request, key)
}

func (h *httpRateLimiter) close() {}

// discardResponseWriter is an http.ResponseWriter that drops all output.
type discardResponseWriter struct {
	header http.Header
}

func (w discardResponseWriter) Header() http.Header         { return w.header }
func (w discardResponseWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w discardResponseWriter) WriteHeader(int)             {}

// goLimiter wraps the memorystore of github.com/sethvargo/go-limiter.
type goLimiter struct {
	store interface {
		Take(ctx context.Context, key string) (tokens, remaining, reset uint64, ok bool, err error)
		Close(ctx context.Context) error
	}
}

func newGoLimiter(tb testing.TB, quota int, window time.Duration) keyedLimiter {
	store, err := memorystore.New(&memorystore.Config{Tokens: uint64(quota), Interval: window})
	if err != nil {
		tb.Fatalf("memorystore.New failed: %v", err)
	}
	return &goLimiter{store: store}
}

func (g *goLimiter) take(key string) bool {
	_, _, _, ok, _ := g.store.Take(context.Background(), key)
	return ok
}

func (g *goLimiter) close() {
	g.store.Close(context.Background())
}

// testKeys returns n distinct keys shaped like the service's keys, a policy
// name and 16 hex digits. Repeated calls share one slice.
func testKeys(n int) []string {
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	if keys, ok := testKeysCache[n]; ok {
		return keys
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("verify:%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	testKeysCache[n] = keys
	return keys
}

var (
	testKeysMu    sync.Mutex
	testKeysCache = map[int][]string{}
)

// TestContendersEnforceQuota checks that every contender admits exactly the
// quota for a key and keeps keys apart, so that no benchmark measures a
// limiter that ignores its limit or mixes up keys.
func TestContendersEnforceQuota(t *testing.T) {
	const quota = 5
	for _, c := range contenders {
		t.Run(c.name, func(t *testing.T) {
			l := c.new(t, quota, time.Hour)
			defer l.close()

			for i := range quota {
				if !l.take("a") {
					t.Fatalf("take %d of key a rejected, want allowed", i+1)
				}
			}
			if l.take("a") {
				t.Errorf("take %d of key a allowed, want rejected", quota+1)
			}
			if !l.take("b") {
				t.Errorf("first take of key b rejected, want allowed")
			}
		})
	}
}

// BenchmarkTake measures one decision on keys that every limiter already
// tracks, and reports the share of rejected decisions as rejected/op. The
// quota of 10¹² events per hour is never spent and the hour never ends
// within a run, so every decision should be admitted. A shorter window
// would not do: go-limiter v0.7.1 refills a budget of 10⁹ per second with
// only one token per elapsed second.
func BenchmarkTake(b *testing.B) {
	const (
		quota  = 1_000_000_000_000
		window = time.Hour
	)
	for _, n := range []int{1, 10_000, 1_000_000} {
		keys := testKeys(n)
		for _, c := range contenders {
			b.Run(fmt.Sprintf("keys=%d/%s", n, c.name), func(b *testing.B) {
				l := c.new(b, quota, window)
				defer l.close()
				for _, key := range keys {
					l.take(key)
				}

				b.Run("serial", func(b *testing.B) {
					b.ReportAllocs()
					i, rejected := 0, 0
					for b.Loop() {
						if !l.take(keys[i%n]) {
							rejected++
						}
						i++
					}
					b.ReportMetric(float64(rejected)/float64(b.N), "rejected/op")
				})
				b.Run("parallel", func(b *testing.B) {
					b.ReportAllocs()
					var offset, rejected atomic.Int64
					b.RunParallel(func(pb *testing.PB) {
						// Goroutines start far apart in keys so that they
						// do not walk the same keys in step.
						i := int(offset.Add(7919))
						var localRejected int64
						for pb.Next() {
							if !l.take(keys[i%n]) {
								localRejected++
							}
							i++
						}
						rejected.Add(localRejected)
					})
					b.ReportMetric(float64(rejected.Load())/float64(b.N), "rejected/op")
				})
			})
		}
	}
}

// BenchmarkTrackedKeys inserts one million new keys per iteration into a
// fresh limiter and reports the live heap growth per key (B/key) and the
// time per new key (ns/key). Each key is copied before its first take, as a
// service builds a fresh key string per request, so a limiter that keeps
// the string is charged for it.
func BenchmarkTrackedKeys(b *testing.B) {
	const (
		n      = 1_000_000
		quota  = 1000
		window = time.Hour // long enough that no limiter drops a key while measured
	)
	keys := testKeys(n)
	for _, c := range contenders {
		b.Run(c.name, func(b *testing.B) {
			var bytes uint64
			for range b.N {
				b.StopTimer()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()

				l := c.new(b, quota, window)
				for _, key := range keys {
					l.take(strings.Clone(key))
				}

				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				bytes += after.HeapAlloc - before.HeapAlloc
				l.close()
				runtime.KeepAlive(l)
				b.StartTimer()
			}
			b.ReportMetric(float64(bytes)/float64(b.N*n), "B/key")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}
