package passwordless

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/language"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// outbox is a Sender that keeps what it is given.
type outbox struct {
	mu       sync.Mutex
	messages []Message
	fail     error
}

func (o *outbox) Send(_ context.Context, m Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	o.messages = append(o.messages, m)
	return nil
}

func (o *outbox) setFail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fail = err
}

// sent returns a copy of the messages so far.
func (o *outbox) sent() []Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.messages)
}

func (o *outbox) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.messages)
}

// lastCode returns the code of the latest message.
func (o *outbox) lastCode(t *testing.T) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.messages) == 0 {
		t.Fatal("no message was sent")
	}
	return o.messages[len(o.messages)-1].Code
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var testSecret = bytes.Repeat([]byte("k"), 32)

var testIP = netip.MustParseAddr("192.0.2.10")

// testEnv is a service wired to a fake clock, an outbox and a log buffer.
type testEnv struct {
	svc   *Service
	clock *fakeClock
	out   *outbox
	store *MemoryStore
	log   *syncBuffer
}

// newTestEnv builds a service; edit changes the configuration first.
func newTestEnv(t *testing.T, edit func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{clock: newFakeClock(), out: &outbox{}, log: &syncBuffer{}}
	env.store = NewMemoryStore(env.clock.Now)

	clients := &ClientRegistry{}
	clients.AddClient(Client{ID: "app", Endpoints: []Endpoint{AllEndpoints}})
	clients.AddClient(Client{ID: "other", Endpoints: []Endpoint{AllEndpoints}})
	clients.AddClient(Client{ID: "admin", Endpoints: []Endpoint{AllEndpoints}, Administers: []string{"app"}})
	clients.SetDefaultClient("app")

	cfg := Config{
		Secret:      testSecret,
		Store:       env.store,
		Clients:     clients,
		SMSSender:   env.out,
		EmailSender: env.out,
		Limiter:     NewMemoryLimiter(MemoryLimiterConfig{Now: env.clock.Now}),
		Logger:      slog.New(slog.NewTextHandler(env.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         env.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env.svc = svc
	return env
}

// start begins an SMS sign-in to phone and returns its token and code.
func (e *testEnv) start(t *testing.T, phone string) (token, code string) {
	t.Helper()
	res, err := e.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: phone, ClientIP: testIP})
	if err != nil {
		t.Fatalf("Start(%s): %v", phone, err)
	}
	return res.Token, e.out.lastCode(t)
}

func (e *testEnv) verify(token, code string) (VerifyResult, error) {
	return e.svc.Verify(context.Background(), VerifyRequest{Token: token, Code: code, ClientIP: testIP})
}

// wrongCode returns a code of the same length that differs from code.
func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

var codePattern = regexp.MustCompile(`\b\d{6}\b`)

type languageTag = language.Tag

func mustTag(s string) language.Tag { return language.MustParse(s) }
