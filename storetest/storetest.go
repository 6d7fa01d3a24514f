// Package storetest is a conformance suite for implementations of
// passwordless.Store. Every backend runs the same cases, so that the
// service can rely on the contracts documented on passwordless.Store
// whichever backend is configured.
//
// A backend calls Run from its own tests with a constructor that returns an
// empty store, or one whose existing sign-ins do not matter, because every
// case uses fresh random tokens:
//
//	func TestMemoryStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) passwordless.Store {
//			return passwordless.NewMemoryStore(now)
//		})
//	}
//
// The suite needs nothing but the Store: it writes and reads sign-ins only
// through the interface, and never inspects the backend's storage. The
// constructor may use t to skip the test when the backend's server is not
// available and to register cleanup with t.Cleanup.
//
// # Clock
//
// The constructor receives now, a fake clock that the suite controls, and
// the store must use it to decide whether a sign-in's ExpiresAt has passed.
// The clock starts at the current wall time truncated to the millisecond
// and moves only forward, when a case advances it. A backend may also set
// a server-side expiry, such as a Redis TTL or a cleanup job in
// PostgreSQL, but only to reclaim space. It should still compare ExpiresAt
// with now, passed as a query argument, on every read and write. Such an
// expiry, set from ExpiresAt, does not fire while a case runs, because the
// cases create sign-ins that expire 15 minutes after the clock's start. A
// backend that can only expire sign-ins by the server's clock fails the
// Expired case, and does not meet the Store contract under a clock that
// differs from the server's.
//
// Times are compared with time.Time.Equal, so a backend may return them in
// any location, but it must keep at least millisecond precision.
//
// # Cases
//
// Each case runs in its own subtest with a fresh store and clock. The cases
// run one after another, so the constructor need not be safe for
// concurrent use. They check these contracts:
//
//   - CreateGet: Get returns every field that Create stored, times and
//     CodeHash included.
//   - CreateDuplicate: Create of a token that is live returns
//     ErrDuplicateToken and leaves the stored sign-in unchanged.
//   - Missing: Get, AddAttempt, SetCode and Consume of an unknown token
//     return ErrNotFound, and Delete returns nil.
//   - Expired: once the clock passes ExpiresAt, Get, AddAttempt, SetCode
//     and Consume return ErrNotFound, and Delete returns nil. Until then
//     the sign-in is found.
//   - AddAttempt: each call increments Attempts by one and returns the
//     sign-in after the increment, with its other fields unchanged.
//   - SetCode: with the current hash as prevHash, SetCode replaces CodeHash,
//     CodeExpiresAt, SentAt and Sends and returns the updated sign-in. The
//     replaced hash then no longer counts as prevHash.
//   - SetCodeConflict: with another prevHash, SetCode returns ErrConflict
//     and changes nothing.
//   - Consume: with the current hash, Consume deletes the sign-in, and a
//     second Consume returns ErrNotFound.
//   - ConsumeConflict: with another hash, Consume returns ErrConflict and
//     keeps the sign-in.
//   - Delete: Delete removes only the given sign-in, and a second Delete
//     returns nil.
//   - CodeHashCopies: changing a CodeHash slice that was passed to Create
//     or SetCode, or returned by Get, AddAttempt or SetCode, does not
//     change the stored hash.
//   - ConcurrentAddAttempt: of 50 concurrent AddAttempt calls, each count
//     from 1 to 50 is returned exactly once.
//   - ConcurrentConsume: of 50 concurrent Consume calls with the right
//     hash, exactly one returns nil and the others ErrNotFound.
//   - ConcurrentSetCode: of 20 concurrent SetCode calls with the same
//     prevHash and different new hashes, exactly one succeeds, the others
//     return ErrConflict, and the store keeps the winner's code.
//
// Run the suite with the race detector (go test -race) so that the
// concurrent cases can also reveal unsynchronized access in the backend.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/go-passwordless/passwordless"
)

// NewStoreFunc returns a store for one case. The store must use now as its
// clock.
type NewStoreFunc func(t *testing.T, now func() time.Time) passwordless.Store

// Lifetimes of the sign-ins that the cases create.
const (
	codeLifetime   = 5 * time.Minute
	signInLifetime = 15 * time.Minute
)

// Goroutine counts of the concurrent cases.
const (
	concurrentAttempts = 50
	concurrentConsumes = 50
	concurrentSetCodes = 20
)

// Run runs the conformance cases against the stores that newStore returns.
func Run(t *testing.T, newStore NewStoreFunc) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"CreateGet", testCreateGet},
		{"CreateDuplicate", testCreateDuplicate},
		{"Missing", testMissing},
		{"Expired", testExpired},
		{"AddAttempt", testAddAttempt},
		{"SetCode", testSetCode},
		{"SetCodeConflict", testSetCodeConflict},
		{"Consume", testConsume},
		{"ConsumeConflict", testConsumeConflict},
		{"Delete", testDelete},
		{"CodeHashCopies", testCodeHashCopies},
		{"ConcurrentAddAttempt", testConcurrentAddAttempt},
		{"ConcurrentConsume", testConcurrentConsume},
		{"ConcurrentSetCode", testConcurrentSetCode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newHarness(t, newStore))
		})
	}
}

// clock is the fake clock that a case controls. It is safe for concurrent
// use, because a store may read it from many goroutines.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is one case's store and clock.
type harness struct {
	store passwordless.Store
	clock *clock
}

func newHarness(t *testing.T, newStore NewStoreFunc) *harness {
	t.Helper()
	// Truncation drops the monotonic reading and any precision below what
	// the backends must keep.
	c := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
	store := newStore(t, c.Now)
	if store == nil {
		t.Fatal("newStore returned a nil Store")
	}
	return &harness{store: store, clock: c}
}

// signIn returns a sign-in with a new token and every field set, started
// at the clock's current time.
func (h *harness) signIn() passwordless.SignIn {
	now := h.clock.Now()
	token := uuid.NewString()
	return passwordless.SignIn{
		Token:         token,
		ClientID:      "client-" + token[:8],
		Connection:    passwordless.Email,
		Recipient:     "Ada.Lovelace@example.com",
		Identifier:    "ada.lovelace@example.com",
		Locale:        "sv-SE",
		CodeHash:      codeHash(token, "first"),
		CodeExpiresAt: now.Add(codeLifetime),
		SentAt:        now.Add(-time.Second),
		Sends:         1,
		Attempts:      2,
		CreatedAt:     now.Add(-2 * time.Second),
		ExpiresAt:     now.Add(signInLifetime),
	}
}

// create stores a new sign-in and returns it.
func (h *harness) create(t *testing.T) passwordless.SignIn {
	t.Helper()
	s := h.signIn()
	if err := h.store.Create(t.Context(), s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s
}

// nextCode returns a code state that a resend of s at the clock's current
// time would store. The new code expires before s does, so the resend does
// not need to extend the sign-in.
func (h *harness) nextCode(s passwordless.SignIn, label string) passwordless.CodeState {
	now := h.clock.Now()
	return passwordless.CodeState{
		CodeHash:      codeHash(s.Token, label),
		CodeExpiresAt: now.Add(codeLifetime - time.Minute),
		SentAt:        now,
		Sends:         s.Sends + 1,
	}
}

// mustGet returns the stored sign-in, failing the test if Get fails.
func (h *harness) mustGet(t *testing.T, token string) passwordless.SignIn {
	t.Helper()
	s, err := h.store.Get(t.Context(), token)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return s
}

// wantGone fails the test unless Get returns ErrNotFound for the token.
func (h *harness) wantGone(t *testing.T, token string) {
	t.Helper()
	if _, err := h.store.Get(t.Context(), token); !errors.Is(err, passwordless.ErrNotFound) {
		t.Errorf("Get after removal: error = %v, want ErrNotFound", err)
	}
}

// codeHash returns a distinct 32-byte value for each token and label, the
// size of the HMAC-SHA-256 hashes the service stores.
func codeHash(token, label string) []byte {
	sum := sha256.Sum256([]byte(token + "\x00" + label))
	return sum[:]
}

// signInFields is the number of fields of SignIn that diffSignIn compares.
const signInFields = 13

// diffSignIn returns a description of each field in which got differs from
// want, or nil if they are equal.
func diffSignIn(got, want passwordless.SignIn) []string {
	var diffs []string
	text := func(name, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", name, got, want))
		}
	}
	number := func(name string, got, want int) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %d, want %d", name, got, want))
		}
	}
	instant := func(name string, got, want time.Time) {
		if !got.Equal(want) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, got, want))
		}
	}

	text("Token", got.Token, want.Token)
	text("ClientID", got.ClientID, want.ClientID)
	text("Connection", string(got.Connection), string(want.Connection))
	text("Recipient", got.Recipient, want.Recipient)
	text("Identifier", got.Identifier, want.Identifier)
	text("Locale", got.Locale, want.Locale)
	if !bytes.Equal(got.CodeHash, want.CodeHash) {
		diffs = append(diffs, fmt.Sprintf("CodeHash = %x, want %x", got.CodeHash, want.CodeHash))
	}
	instant("CodeExpiresAt", got.CodeExpiresAt, want.CodeExpiresAt)
	instant("SentAt", got.SentAt, want.SentAt)
	number("Sends", got.Sends, want.Sends)
	number("Attempts", got.Attempts, want.Attempts)
	instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	instant("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	return diffs
}

// checkSignIn fails the test for each field in which got differs from want.
func checkSignIn(t *testing.T, op string, got, want passwordless.SignIn) {
	t.Helper()
	for _, d := range diffSignIn(got, want) {
		t.Errorf("%s: %s", op, d)
	}
}

// withCode returns s with the code state replaced by next.
func withCode(s passwordless.SignIn, next passwordless.CodeState) passwordless.SignIn {
	s.CodeHash = next.CodeHash
	s.CodeExpiresAt = next.CodeExpiresAt
	s.SentAt = next.SentAt
	s.Sends = next.Sends
	return s
}

func testCreateGet(t *testing.T, h *harness) {
	// A new field in SignIn must be added to diffSignIn, or this case
	// would stop checking that backends store every field.
	if n := reflect.TypeFor[passwordless.SignIn]().NumField(); n != signInFields {
		t.Fatalf("SignIn has %d fields, diffSignIn compares %d", n, signInFields)
	}

	want := h.create(t)
	got := h.mustGet(t, want.Token)
	checkSignIn(t, "Get", got, want)
}

func testCreateDuplicate(t *testing.T, h *harness) {
	first := h.create(t)

	second := h.signIn()
	second.Token = first.Token
	second.CodeHash = codeHash(first.Token, "second")
	second.Attempts = 0
	err := h.store.Create(t.Context(), second)
	if !errors.Is(err, passwordless.ErrDuplicateToken) {
		t.Fatalf("second Create: error = %v, want ErrDuplicateToken", err)
	}

	checkSignIn(t, "Get after duplicate Create", h.mustGet(t, first.Token), first)
}

func testMissing(t *testing.T, h *harness) {
	ctx := t.Context()
	token := uuid.NewString()
	state := passwordless.CodeState{
		CodeHash:      codeHash(token, "next"),
		CodeExpiresAt: h.clock.Now().Add(codeLifetime),
		SentAt:        h.clock.Now(),
		Sends:         2,
	}

	ops := []struct {
		name string
		call func() error
	}{
		{"Get", func() error {
			_, err := h.store.Get(ctx, token)
			return err
		}},
		{"AddAttempt", func() error {
			_, err := h.store.AddAttempt(ctx, token)
			return err
		}},
		{"SetCode", func() error {
			_, err := h.store.SetCode(ctx, token, codeHash(token, "first"), state)
			return err
		}},
		{"Consume", func() error {
			return h.store.Consume(ctx, token, codeHash(token, "first"))
		}},
	}
	for _, op := range ops {
		if err := op.call(); !errors.Is(err, passwordless.ErrNotFound) {
			t.Errorf("%s of a missing token: error = %v, want ErrNotFound", op.name, err)
		}
	}

	if err := h.store.Delete(ctx, token); err != nil {
		t.Errorf("Delete of a missing token: error = %v, want nil", err)
	}
}

func testExpired(t *testing.T, h *harness) {
	ctx := t.Context()

	// One sign-in per operation, so that each operation meets a sign-in
	// that is expired but possibly still stored.
	ops := []struct {
		name string
		call func(s passwordless.SignIn) error
	}{
		{"Get", func(s passwordless.SignIn) error {
			_, err := h.store.Get(ctx, s.Token)
			return err
		}},
		{"AddAttempt", func(s passwordless.SignIn) error {
			_, err := h.store.AddAttempt(ctx, s.Token)
			return err
		}},
		{"SetCode", func(s passwordless.SignIn) error {
			_, err := h.store.SetCode(ctx, s.Token, s.CodeHash, h.nextCode(s, "next"))
			return err
		}},
		{"Consume", func(s passwordless.SignIn) error {
			return h.store.Consume(ctx, s.Token, s.CodeHash)
		}},
	}
	signIns := make([]passwordless.SignIn, len(ops))
	for i := range ops {
		signIns[i] = h.create(t)
	}
	deleted := h.create(t)
	all := append([]passwordless.SignIn{deleted}, signIns...)

	// Just before ExpiresAt every sign-in is still found.
	h.clock.Advance(signInLifetime - time.Second)
	for _, s := range all {
		checkSignIn(t, "Get before ExpiresAt", h.mustGet(t, s.Token), s)
	}

	h.clock.Advance(2 * time.Second)
	for i, op := range ops {
		if err := op.call(signIns[i]); !errors.Is(err, passwordless.ErrNotFound) {
			t.Errorf("%s after ExpiresAt: error = %v, want ErrNotFound", op.name, err)
		}
	}
	if err := h.store.Delete(ctx, deleted.Token); err != nil {
		t.Errorf("Delete after ExpiresAt: error = %v, want nil", err)
	}
	for _, s := range all {
		h.wantGone(t, s.Token)
	}
}

func testAddAttempt(t *testing.T, h *harness) {
	want := h.create(t)

	for range 3 {
		want.Attempts++
		got, err := h.store.AddAttempt(t.Context(), want.Token)
		if err != nil {
			t.Fatalf("AddAttempt: %v", err)
		}
		checkSignIn(t, "AddAttempt", got, want)
	}

	checkSignIn(t, "Get after AddAttempt", h.mustGet(t, want.Token), want)
}

func testSetCode(t *testing.T, h *harness) {
	s := h.create(t)
	h.clock.Advance(time.Minute)
	next := h.nextCode(s, "second")

	got, err := h.store.SetCode(t.Context(), s.Token, s.CodeHash, next)
	if err != nil {
		t.Fatalf("SetCode with the current hash: %v", err)
	}
	want := withCode(s, next)
	checkSignIn(t, "SetCode", got, want)
	checkSignIn(t, "Get after SetCode", h.mustGet(t, s.Token), want)

	// The replaced hash no longer counts as the current one.
	_, err = h.store.SetCode(t.Context(), s.Token, s.CodeHash, h.nextCode(s, "third"))
	if !errors.Is(err, passwordless.ErrConflict) {
		t.Errorf("SetCode with the replaced hash: error = %v, want ErrConflict", err)
	}
	checkSignIn(t, "Get after rejected SetCode", h.mustGet(t, s.Token), want)
}

func testSetCodeConflict(t *testing.T, h *harness) {
	s := h.create(t)
	h.clock.Advance(time.Minute)

	wrongHashes := []struct {
		name string
		hash []byte
	}{
		{"other", codeHash(s.Token, "other")},
		{"prefix", s.CodeHash[:len(s.CodeHash)-1]},
		{"nil", nil},
	}
	for _, w := range wrongHashes {
		_, err := h.store.SetCode(t.Context(), s.Token, w.hash, h.nextCode(s, "second"))
		if !errors.Is(err, passwordless.ErrConflict) {
			t.Errorf("SetCode with %s prevHash: error = %v, want ErrConflict", w.name, err)
		}
	}

	checkSignIn(t, "Get after rejected SetCode", h.mustGet(t, s.Token), s)
}

func testConsume(t *testing.T, h *harness) {
	s := h.create(t)

	if err := h.store.Consume(t.Context(), s.Token, s.CodeHash); err != nil {
		t.Fatalf("Consume with the current hash: %v", err)
	}
	h.wantGone(t, s.Token)

	if err := h.store.Consume(t.Context(), s.Token, s.CodeHash); !errors.Is(err, passwordless.ErrNotFound) {
		t.Errorf("second Consume: error = %v, want ErrNotFound", err)
	}
}

func testConsumeConflict(t *testing.T, h *harness) {
	s := h.create(t)

	wrongHashes := []struct {
		name string
		hash []byte
	}{
		{"other", codeHash(s.Token, "other")},
		{"prefix", s.CodeHash[:len(s.CodeHash)-1]},
		{"nil", nil},
	}
	for _, w := range wrongHashes {
		err := h.store.Consume(t.Context(), s.Token, w.hash)
		if !errors.Is(err, passwordless.ErrConflict) {
			t.Errorf("Consume with %s hash: error = %v, want ErrConflict", w.name, err)
		}
	}

	checkSignIn(t, "Get after rejected Consume", h.mustGet(t, s.Token), s)
}

func testDelete(t *testing.T, h *harness) {
	s := h.create(t)
	other := h.create(t)

	if err := h.store.Delete(t.Context(), s.Token); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	h.wantGone(t, s.Token)
	checkSignIn(t, "Get of another sign-in after Delete", h.mustGet(t, other.Token), other)

	if err := h.store.Delete(t.Context(), s.Token); err != nil {
		t.Errorf("second Delete: error = %v, want nil", err)
	}
}

func testCodeHashCopies(t *testing.T, h *harness) {
	ctx := t.Context()
	s := h.signIn()
	stored := bytes.Clone(s.CodeHash)

	check := func(step string) {
		t.Helper()
		if got := h.mustGet(t, s.Token).CodeHash; !bytes.Equal(got, stored) {
			t.Errorf("after changing the slice %s: stored CodeHash = %x, want %x", step, got, stored)
		}
	}

	if err := h.store.Create(ctx, s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	clear(s.CodeHash)
	check("passed to Create")

	clear(h.mustGet(t, s.Token).CodeHash)
	check("returned by Get")

	added, err := h.store.AddAttempt(ctx, s.Token)
	if err != nil {
		t.Fatalf("AddAttempt: %v", err)
	}
	clear(added.CodeHash)
	check("returned by AddAttempt")

	next := h.nextCode(s, "second")
	stored = bytes.Clone(next.CodeHash)
	updated, err := h.store.SetCode(ctx, s.Token, h.mustGet(t, s.Token).CodeHash, next)
	if err != nil {
		t.Fatalf("SetCode: %v", err)
	}
	clear(next.CodeHash)
	check("passed to SetCode")
	clear(updated.CodeHash)
	check("returned by SetCode")
}

func testConcurrentAddAttempt(t *testing.T, h *harness) {
	s := h.signIn()
	s.Attempts = 0
	if err := h.store.Create(t.Context(), s); err != nil {
		t.Fatalf("Create: %v", err)
	}

	counts := make([]int, concurrentAttempts)
	errs := make([]error, concurrentAttempts)
	concurrently(concurrentAttempts, func(i int) {
		var got passwordless.SignIn
		got, errs[i] = h.store.AddAttempt(t.Context(), s.Token)
		counts[i] = got.Attempts
	})

	seen := make(map[int]int)
	for i, err := range errs {
		if err != nil {
			t.Errorf("AddAttempt in goroutine %d: %v", i, err)
			continue
		}
		seen[counts[i]]++
	}
	for n := 1; n <= concurrentAttempts; n++ {
		if seen[n] != 1 {
			t.Errorf("count %d returned %d times, want once", n, seen[n])
		}
	}
	if got := h.mustGet(t, s.Token).Attempts; got != concurrentAttempts {
		t.Errorf("Attempts after %d concurrent calls = %d, want %d", concurrentAttempts, got, concurrentAttempts)
	}
}

func testConcurrentConsume(t *testing.T, h *harness) {
	s := h.create(t)

	errs := make([]error, concurrentConsumes)
	concurrently(concurrentConsumes, func(i int) {
		errs[i] = h.store.Consume(t.Context(), s.Token, s.CodeHash)
	})

	succeeded := 0
	for i, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case !errors.Is(err, passwordless.ErrNotFound):
			t.Errorf("Consume in goroutine %d: error = %v, want nil or ErrNotFound", i, err)
		}
	}
	if succeeded != 1 {
		t.Errorf("%d of %d concurrent Consume calls succeeded, want exactly 1", succeeded, concurrentConsumes)
	}
	h.wantGone(t, s.Token)
}

func testConcurrentSetCode(t *testing.T, h *harness) {
	s := h.create(t)
	h.clock.Advance(time.Minute)

	nexts := make([]passwordless.CodeState, concurrentSetCodes)
	for i := range nexts {
		nexts[i] = h.nextCode(s, fmt.Sprintf("resend-%d", i))
	}
	results := make([]passwordless.SignIn, concurrentSetCodes)
	errs := make([]error, concurrentSetCodes)
	concurrently(concurrentSetCodes, func(i int) {
		results[i], errs[i] = h.store.SetCode(t.Context(), s.Token, s.CodeHash, nexts[i])
	})

	var winners []int
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, i)
		case !errors.Is(err, passwordless.ErrConflict):
			t.Errorf("SetCode in goroutine %d: error = %v, want nil or ErrConflict", i, err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("SetCode succeeded in goroutines %v of %d concurrent calls, want exactly one", winners, concurrentSetCodes)
	}

	winner := winners[0]
	want := withCode(s, nexts[winner])
	checkSignIn(t, "winning SetCode", results[winner], want)
	checkSignIn(t, "Get after concurrent SetCode", h.mustGet(t, s.Token), want)
}

// concurrently calls f(0) to f(n-1) in n goroutines, released together so
// that their calls overlap as much as possible, and waits for all of them.
func concurrently(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}
