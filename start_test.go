package passwordless

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestStartSendsLocalizedCode(t *testing.T) {
	tests := []struct {
		locale   string
		wantLang string
		wantText string
	}{
		{"", "en", "sign-in code"},
		{"nb_NO", "nb", "engangskoden din"},
		{"no", "nb", "engangskoden din"},
		{"nn-NO", "nn", "eingongskoden din"},
		{"sv-FI", "sv", "engångskod"},
		{"da", "da", "engangskode"},
		{"fi", "fi", "kirjautumiskoodisi"},
		{"de-DE", "en", "sign-in code"},
	}
	for _, tt := range tests {
		t.Run(tt.locale, func(t *testing.T) {
			env := newTestEnv(t, nil)
			res, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+4791234567", Locale: tt.locale})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if _, err := uuid.Parse(res.Token); err != nil {
				t.Errorf("Token %q is not a UUID: %v", res.Token, err)
			}
			msg := env.out.messages[0]
			if msg.Locale.String() != tt.wantLang || res.Locale.String() != tt.wantLang {
				t.Errorf("locale = %s (result %s), want %s", msg.Locale, res.Locale, tt.wantLang)
			}
			if !strings.Contains(msg.Body, tt.wantText) || !strings.Contains(msg.Body, msg.Code) {
				t.Errorf("body %q lacks %q or the code", msg.Body, tt.wantText)
			}
			if msg.To != "+4791234567" || msg.Token != res.Token || msg.Connection != SMS {
				t.Errorf("message = %+v, want it addressed to +4791234567 for the new token", msg)
			}
		})
	}
}

func TestStartRejectsBadInput(t *testing.T) {
	tests := []struct {
		name      string
		req       StartRequest
		wantErr   error
		wantParam string
	}{
		{"missing connection", StartRequest{PhoneNumber: "+46701111111"}, ErrMissingConnection, "connection"},
		{"unknown connection", StartRequest{Connection: "fax"}, ErrInvalidConnection, "connection"},
		{"sms without number", StartRequest{Connection: "sms", Email: "a@example.com"}, ErrInvalidIdentifier, "phoneNumber"},
		{"email without address", StartRequest{Connection: "email", PhoneNumber: "+46701111111"}, ErrInvalidIdentifier, "email"},
		{"national number", StartRequest{Connection: "sms", PhoneNumber: "0701111111"}, ErrInvalidIdentifier, "phoneNumber"},
		{"quoted local part", StartRequest{Connection: "email", Email: `"e@attacker.example"@victim.example`}, ErrInvalidIdentifier, "email"},
		{"header injection", StartRequest{Connection: "email", Email: "a@example.com\r\nBcc: x@example.com"}, ErrInvalidIdentifier, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			_, err := env.svc.Start(context.Background(), tt.req)
			var pe *ParamError
			if !errors.As(err, &pe) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if pe.Param != tt.wantParam {
				t.Errorf("Param = %q, want %q", pe.Param, tt.wantParam)
			}
			if env.out.count() != 0 || env.store.Len() != 0 {
				t.Errorf("sent %d messages and stored %d sign-ins, want none", env.out.count(), env.store.Len())
			}
		})
	}
}

func TestStartSendFailureRemovesSignIn(t *testing.T) {
	env := newTestEnv(t, nil)
	env.out.setFail(errors.New("gateway timeout"))

	_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	if !errors.Is(err, ErrSendFailed) {
		t.Fatalf("err = %v, want ErrSendFailed", err)
	}
	if !strings.Contains(err.Error(), "gateway timeout") {
		t.Errorf("err = %v, want the cause in the message", err)
	}
	if n := env.store.Len(); n != 0 {
		t.Errorf("store holds %d sign-ins, want 0", n)
	}

	// The failed send still spent a start of the destination's budget,
	// because the provider may have delivered it: four more are left.
	env.out.setFail(nil)
	for i := range 4 {
		if _, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"}); err != nil {
			t.Fatalf("start %d after the failure: %v", i, err)
		}
	}
	if _, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"}); !errors.Is(err, ErrRateLimited) {
		t.Errorf("sixth start: err = %v, want ErrRateLimited", err)
	}
}

// cancelAwareStore fails every call whose context is done, as a database
// store does.
type cancelAwareStore struct{ *MemoryStore }

func (s cancelAwareStore) SetCode(ctx context.Context, token string, prevHash []byte, next CodeState) (SignIn, error) {
	if err := ctx.Err(); err != nil {
		return SignIn{}, err
	}
	return s.MemoryStore.SetCode(ctx, token, prevHash, next)
}

func (s cancelAwareStore) Delete(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.MemoryStore.Delete(ctx, token)
}

func TestSendCancelledByCallerIsUndone(t *testing.T) {
	env := newTestEnv(t, nil)
	var hangUp context.CancelFunc
	svc, err := New(Config{
		Secret:  testSecret,
		Store:   cancelAwareStore{env.store},
		Clients: env.svc.clients,
		Limiter: env.svc.limiter,
		Logger:  env.svc.logger,
		Now:     env.clock.Now,
		SMSSender: SenderFunc(func(ctx context.Context, m Message) error {
			if hangUp != nil {
				// The caller hangs up while the provider is being called.
				hangUp()
				return ctx.Err()
			}
			return env.out.Send(ctx, m)
		}),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	started, err := svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	code := env.out.lastCode(t)
	env.clock.Advance(time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	hangUp = cancel
	if _, err := svc.Resend(ctx, ResendRequest{Token: started.Token}); !errors.Is(err, ErrSendFailed) {
		t.Fatalf("Resend: err = %v, want ErrSendFailed", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	hangUp = cancel
	if _, err := svc.Start(ctx, StartRequest{Connection: "sms", PhoneNumber: "+46701111112"}); !errors.Is(err, ErrSendFailed) {
		t.Fatalf("Start: err = %v, want ErrSendFailed", err)
	}
	hangUp = nil

	if n := env.store.Len(); n != 1 {
		t.Errorf("store holds %d sign-ins, want only the first: the failed start must be removed", n)
	}
	if _, err := svc.Verify(context.Background(), VerifyRequest{Token: started.Token, Code: code}); err != nil {
		t.Errorf("the code held before the failed resend: %v", err)
	}
}

func TestStartWithoutSenderForConnection(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.EmailSender = nil })
	_, err := env.svc.Start(context.Background(), StartRequest{Connection: "email", Email: "a@example.com"})
	if !errors.Is(err, ErrNoSender) {
		t.Errorf("err = %v, want ErrNoSender", err)
	}
}

func TestStartSMSRegionAllowlist(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.AllowedSMSRegions = []string{"se", "NO"} })
	if _, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+4791234567"}); err != nil {
		t.Errorf("Norwegian number: %v", err)
	}
	_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+358401234567"})
	if !errors.Is(err, ErrCountryNotAllowed) {
		t.Errorf("Finnish number: err = %v, want ErrCountryNotAllowed", err)
	}
}

// failingStore fails every operation.
type failingStore struct{ Store }

var errBackendDown = errors.New("connection refused")

func (failingStore) Create(context.Context, SignIn) error { return errBackendDown }
func (failingStore) Get(context.Context, string) (SignIn, error) {
	return SignIn{}, errBackendDown
}

func TestStoreFailure(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Store = failingStore{} })

	_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("Start: err = %v, want ErrStoreUnavailable", err)
	}
	if env.out.count() != 0 {
		t.Errorf("a message was sent for a sign-in that was not stored")
	}
	_, err = env.verify(uuid.NewString(), "123456")
	if !errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrVerificationFailed) {
		t.Errorf("Verify: err = %v, want ErrStoreUnavailable", err)
	}
	if info := describeError(err, "", ""); info.status != 503 {
		t.Errorf("status = %d, want 503", info.status)
	}
}

// brokenLimiter fails every call and counts them.
type brokenLimiter struct{ calls atomic.Int64 }

func (b *brokenLimiter) Take(context.Context, string, Limit) (Decision, error) {
	b.calls.Add(1)
	return Decision{}, errors.New("redis: connection refused")
}
func (b *brokenLimiter) Peek(ctx context.Context, key string, l Limit) (Decision, error) {
	return b.Take(ctx, key, l)
}
func (b *brokenLimiter) Refund(context.Context, string, Limit) error { return nil }

func TestLimiterFailureFailsClosedAndLogsOnce(t *testing.T) {
	limiter := &brokenLimiter{}
	env := newTestEnv(t, func(c *Config) { c.Limiter = limiter })

	for range 20 {
		_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111", ClientIP: testIP})
		if !errors.Is(err, ErrLimiterUnavailable) {
			t.Fatalf("err = %v, want ErrLimiterUnavailable", err)
		}
		if info := describeError(err, "", ""); info.status != 503 {
			t.Fatalf("status = %d, want 503", info.status)
		}
	}
	if env.out.count() != 0 {
		t.Errorf("%d messages sent while the limiter was down, want 0", env.out.count())
	}
	if n := strings.Count(env.log.String(), "rate limiter failed"); n != 1 {
		t.Errorf("logged %d times in one burst, want 1", n)
	}

	env.clock.Advance(time.Minute)
	env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111", ClientIP: testIP})
	logs := env.log.String()
	if n := strings.Count(logs, "rate limiter failed"); n != 2 {
		t.Errorf("logged %d times after the interval, want 2", n)
	}
	if !strings.Contains(logs, "suppressed_since_last=19") {
		t.Errorf("log does not count the suppressed errors:\n%s", logs)
	}
}

func TestCodesAndAddressesNeverLogged(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")
	env.verify(token, wrongCode(code))
	env.clock.Advance(time.Minute)
	env.out.setFail(errors.New("provider rejected the message"))
	env.resend(token)
	env.svc.Start(context.Background(), StartRequest{Connection: "email", Email: "ann.lee@example.com"})

	logs := env.log.String()
	if !strings.Contains(logs, "sending the code failed") {
		t.Fatalf("expected send failures in the log, got:\n%s", logs)
	}
	for _, secret := range []string{code, wrongCode(code), "+46701111111", "46701111111", "ann.lee@example.com", string(testSecret)} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
	if codePattern.MatchString(strings.ReplaceAll(logs, token, "")) {
		t.Errorf("log contains a six-digit number:\n%s", logs)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"short secret", Config{Secret: []byte("short")}, "Secret is 5 bytes"},
		{"short previous secret", Config{Secret: testSecret, PreviousSecrets: [][]byte{[]byte("x")}}, "PreviousSecrets[0]"},
		{"code too short", Config{Secret: testSecret, CodeLength: 4}, "CodeLength 4"},
		{"code too long", Config{Secret: testSecret, CodeLength: 13}, "CodeLength 13"},
		{"negative ttl", Config{Secret: testSecret, CodeTTL: -time.Second}, "CodeTTL"},
		{"attempts too high", Config{Secret: testSecret, MaxAttempts: 101}, "MaxAttempts 101"},
		{"negative attempts", Config{Secret: testSecret, MaxAttempts: -1}, "MaxAttempts -1"},
		{"bad region", Config{Secret: testSecret, AllowedSMSRegions: []string{"Sweden"}}, "AllowedSMSRegions"},
		{"unknown region", Config{Secret: testSecret, AllowedSMSRegions: []string{"XX"}}, `"XX"`},
		{"bad phone region", Config{Secret: testSecret, PhoneRegion: "Sweden"}, "PhoneRegion"},
		{"product with newline", Config{Secret: testSecret, ProductName: "A\r\nBcc: x"}, "ProductName"},
		{"quota without window", Config{Secret: testSecret, Limits: Limits{FailuresPerDestination: Limit{Quota: 3}}}, "Limits.FailuresPerDestination has Quota 3"},
		{"window without quota", Config{Secret: testSecret, Limits: Limits{StartPerIP: Limit{Window: time.Hour}}}, "Limits.StartPerIP has Window 1h0m0s but no Quota"},
		{"window too short", Config{Secret: testSecret, Limits: Limits{VerifyPerIP: Limit{Quota: 3, Window: 2}}}, "Limits.VerifyPerIP Window 2ns"},
		{"broken template", Config{Secret: testSecret, Templates: map[languageTag]MessageTemplate{mustTag("en"): {SMS: "{{.Missing}}"}}}, "sms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = slog.New(slog.DiscardHandler)
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewWarnsAboutDevelopmentDefaults(t *testing.T) {
	var log bytes.Buffer
	_, err := New(Config{CodeTTL: 15 * time.Minute, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, want := range []string{"no Secret configured", "no Clients configured", "PrintSender", "CodeTTL is above 10 minutes"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks a warning about %q:\n%s", want, log.String())
		}
	}
}

func TestZeroConfigWorks(t *testing.T) {
	var printed syncBuffer
	svc, err := New(Config{
		SMSSender: &PrintSender{W: &printed},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res, err := svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	code := codePattern.FindString(printed.String())
	if code == "" {
		t.Fatalf("no code printed:\n%s", printed.String())
	}
	if _, err := svc.Verify(context.Background(), VerifyRequest{Token: res.Token, Code: code}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestConcurrentStartsShareOneBudget(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Limits.StartPerIP = Limit{Quota: 25, Window: time.Hour}
		c.Limits.StartPerDestination = Limit{Quota: -1}
		c.Limits.SendsPerDestination = Limit{Quota: -1}
	})

	var wg sync.WaitGroup
	var admitted, limited atomic.Int64
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111", ClientIP: testIP})
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, ErrRateLimited):
				limited.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 25 || limited.Load() != 75 {
		t.Errorf("admitted %d, limited %d, want 25 and 75", admitted.Load(), limited.Load())
	}
}

func TestNewWarnsAboutDisabledDestinationLimits(t *testing.T) {
	var log syncBuffer
	_, err := New(Config{
		Secret: testSecret,
		Limits: Limits{FailuresPerDestination: Limit{Quota: -1}},
		Logger: slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !strings.Contains(log.String(), "limit=FailuresPerDestination") {
		t.Errorf("no warning about the disabled failure budget:\n%s", log.String())
	}
}
