package passwordless

import (
	"context"
	"sync"
	"time"
)

type MemoryLimiterConfig struct {
	Now     func() time.Time
	MaxKeys int
}

type MemoryLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	tat map[string]time.Time
}

func NewMemoryLimiter(cfg MemoryLimiterConfig) *MemoryLimiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemoryLimiter{now: cfg.Now, tat: map[string]time.Time{}}
}

func (m *MemoryLimiter) decide(key string, l Limit, store bool) Decision {
	if !l.Enabled() {
		return Decision{Allowed: true}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	t := l.Window / time.Duration(l.Quota)
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(t)
	if newTAT.Sub(now) > l.Window {
		return Decision{Allowed: false, Limit: l.Quota, Remaining: 0, Reset: tat.Sub(now), RetryAfter: newTAT.Sub(now) - l.Window}
	}
	if store {
		m.tat[key] = newTAT
	}
	rem := int((now.Add(l.Window).Sub(newTAT)) / t)
	return Decision{Allowed: true, Limit: l.Quota, Remaining: rem, Reset: newTAT.Sub(now)}
}
func (m *MemoryLimiter) Take(_ context.Context, key string, l Limit) (Decision, error) {
	return m.decide(key, l, true), nil
}
func (m *MemoryLimiter) Peek(_ context.Context, key string, l Limit) (Decision, error) {
	return m.decide(key, l, false), nil
}
func (m *MemoryLimiter) Refund(_ context.Context, key string, l Limit) error {
	if !l.Enabled() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := l.Window / time.Duration(l.Quota)
	tat := m.tat[key].Add(-t)
	if tat.Before(m.now()) {
		delete(m.tat, key)
		return nil
	}
	m.tat[key] = tat
	return nil
}
