package passwordless

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// memoryTestClock is a clock that a single goroutine sets by hand.
type memoryTestClock struct {
	now time.Time
}

func (c *memoryTestClock) Now() time.Time { return c.now }

// createMemorySignIn stores a sign-in that expires after lifetime and
// returns its token.
func createMemorySignIn(t *testing.T, m *MemoryStore, now time.Time, lifetime time.Duration) string {
	t.Helper()
	token := uuid.NewString()
	s := SignIn{
		Token:         token,
		ClientID:      "client",
		Connection:    SMS,
		Recipient:     "+46701111111",
		Identifier:    "+46701111111",
		CodeHash:      []byte("hash-" + token),
		CodeExpiresAt: now.Add(lifetime),
		SentAt:        now,
		Sends:         1,
		CreatedAt:     now,
		ExpiresAt:     now.Add(lifetime),
	}
	if err := m.Create(t.Context(), s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return token
}

func checkMemoryLen(t *testing.T, m *MemoryStore, step string, want int) {
	t.Helper()
	if got := m.Len(); got != want {
		t.Errorf("Len %s = %d, want %d", step, got, want)
	}
}

func TestMemoryStoreLen(t *testing.T) {
	t.Parallel()
	clock := &memoryTestClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m := NewMemoryStore(clock.Now)
	checkMemoryLen(t, m, "of a new store", 0)

	consumed := createMemorySignIn(t, m, clock.now, time.Hour)
	deleted := createMemorySignIn(t, m, clock.now, time.Hour)
	createMemorySignIn(t, m, clock.now, time.Hour)
	createMemorySignIn(t, m, clock.now, 10*time.Second)
	checkMemoryLen(t, m, "after four Creates", 4)

	if err := m.Delete(t.Context(), deleted); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkMemoryLen(t, m, "after Delete", 3)

	if err := m.Consume(t.Context(), consumed, []byte("hash-"+consumed)); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	checkMemoryLen(t, m, "after Consume", 2)

	// An expired sign-in that nothing has read or swept is still counted.
	clock.now = clock.now.Add(20 * time.Second)
	checkMemoryLen(t, m, "after the short sign-in expired", 2)
}

func TestMemoryStoreSweep(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &memoryTestClock{now: start}
	m := NewMemoryStore(clock.Now)

	// The first Create sweeps, so the next sweep is due a minute later.
	expiring := createMemorySignIn(t, m, clock.now, 30*time.Second)
	createMemorySignIn(t, m, clock.now, time.Hour)
	checkMemoryLen(t, m, "after two Creates", 2)

	clock.now = start.Add(45 * time.Second)
	createMemorySignIn(t, m, clock.now, time.Hour)
	checkMemoryLen(t, m, "after a Create less than a minute after the last sweep", 3)

	clock.now = start.Add(memorySweepInterval)
	createMemorySignIn(t, m, clock.now, time.Hour)
	checkMemoryLen(t, m, "after a Create a minute after the last sweep", 3)

	m.mu.Lock()
	_, stillStored := m.signIns[expiring]
	m.mu.Unlock()
	if stillStored {
		t.Error("expired sign-in still stored after the sweep")
	}
}

func TestMemoryStoreSweepKeepsLive(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &memoryTestClock{now: start}
	m := NewMemoryStore(clock.Now)

	live := createMemorySignIn(t, m, clock.now, 2*time.Minute)
	clock.now = start.Add(90 * time.Second)
	createMemorySignIn(t, m, clock.now, time.Hour)
	checkMemoryLen(t, m, "after the sweep", 2)

	if _, err := m.Get(t.Context(), live); err != nil {
		t.Errorf("Get of a live sign-in after the sweep: %v", err)
	}
}
