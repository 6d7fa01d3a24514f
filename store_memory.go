package passwordless

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store that keeps sign-ins in the process's memory. It
// suits development, tests and single-instance servers: the sign-ins are
// lost when the process exits and are not shared between processes.
//
// Expired sign-ins are never returned, and are removed by a sweep that runs
// at most once a minute during Create. A MemoryStore is safe for concurrent
// use. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	now func() time.Time

	mu        sync.Mutex
	signIns   map[string]SignIn
	lastSweep time.Time
}

var _ Store = (*MemoryStore)(nil)

// memorySweepInterval is the least time between two sweeps of expired
// sign-ins.
const memorySweepInterval = time.Minute

// NewMemoryStore returns an empty MemoryStore. now is its clock; nil means
// time.Now.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, signIns: make(map[string]SignIn)}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, s SignIn) error {
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()

	if now.Sub(m.lastSweep) >= memorySweepInterval {
		m.sweep(now)
	}
	if old, ok := m.signIns[s.Token]; ok && now.Before(old.ExpiresAt) {
		return ErrDuplicateToken
	}
	m.signIns[s.Token] = cloneSignIn(s)
	return nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, token string) (SignIn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, err := m.live(token)
	if err != nil {
		return SignIn{}, err
	}
	return cloneSignIn(s), nil
}

// AddAttempt implements Store.
func (m *MemoryStore) AddAttempt(_ context.Context, token string) (SignIn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, err := m.live(token)
	if err != nil {
		return SignIn{}, err
	}
	s.Attempts++
	m.signIns[token] = s
	return cloneSignIn(s), nil
}

// SetCode implements Store.
func (m *MemoryStore) SetCode(_ context.Context, token string, prevHash []byte, next CodeState) (SignIn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, err := m.live(token)
	if err != nil {
		return SignIn{}, err
	}
	if !bytes.Equal(s.CodeHash, prevHash) {
		return SignIn{}, ErrConflict
	}
	s.CodeHash = bytes.Clone(next.CodeHash)
	s.CodeExpiresAt = next.CodeExpiresAt
	s.SentAt = next.SentAt
	s.Sends = next.Sends
	if s.ExpiresAt.Before(next.CodeExpiresAt) {
		s.ExpiresAt = next.CodeExpiresAt
	}
	m.signIns[token] = s
	return cloneSignIn(s), nil
}

// Consume implements Store.
func (m *MemoryStore) Consume(_ context.Context, token string, codeHash []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, err := m.live(token)
	if err != nil {
		return err
	}
	if !bytes.Equal(s.CodeHash, codeHash) {
		return ErrConflict
	}
	delete(m.signIns, token)
	return nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	delete(m.signIns, token)
	return nil
}

// Len returns the number of sign-ins held, expired ones not yet swept
// included.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.signIns)
}

// live returns the unexpired sign-in with the token. The caller holds mu.
func (m *MemoryStore) live(token string) (SignIn, error) {
	s, ok := m.signIns[token]
	if !ok {
		return SignIn{}, ErrNotFound
	}
	if !m.now().Before(s.ExpiresAt) {
		delete(m.signIns, token)
		return SignIn{}, ErrNotFound
	}
	return s, nil
}

// sweep removes every expired sign-in. The caller holds mu.
func (m *MemoryStore) sweep(now time.Time) {
	for token, s := range m.signIns {
		if !now.Before(s.ExpiresAt) {
			delete(m.signIns, token)
		}
	}
	m.lastSweep = now
}

// cloneSignIn copies s so that callers cannot change the stored hash.
func cloneSignIn(s SignIn) SignIn {
	s.CodeHash = bytes.Clone(s.CodeHash)
	return s
}
