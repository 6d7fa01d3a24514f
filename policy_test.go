package passwordless

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// onlyLimit disables every policy but the one set by edit, so a test checks
// one budget at a time.
func onlyLimit(edit func(*Limits)) func(*Config) {
	return func(c *Config) {
		off := Limit{Quota: -1}
		c.Limits = Limits{
			StartPerIP: off, ResendPerIP: off, VerifyPerIP: off,
			StartPerClient: off, ResendPerClient: off, VerifyPerClient: off,
			StartPerDestination: off, SendsPerDestination: off,
			FailuresPerDestination: off, SMSPerCountry: off,
		}
		edit(&c.Limits)
		c.ResendInterval = time.Nanosecond
		c.MaxResends = 100
	}
}

func TestPoliciesRefuseTheCrossingRequest(t *testing.T) {
	limit := Limit{Quota: 3, Window: 30 * time.Minute}
	tests := []struct {
		name string
		set  func(*Limits)
		// request makes request number i and returns its error.
		request func(t *testing.T, env *testEnv, i int) error
		// wantRetry is the wait after the refusal: one event's share of
		// the window for evenly refilled budgets, and the whole window for
		// the send quota, which counts in a sliding window. Zero means 10m.
		wantRetry time.Duration
	}{
		{
			name: "start per IP",
			set:  func(l *Limits) { l.StartPerIP = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				phone := []string{"+46701111111", "+46701111112", "+46701111113", "+46701111114"}[i]
				_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: phone, ClientIP: testIP})
				return err
			},
		},
		{
			name: "start per client",
			set:  func(l *Limits) { l.StartPerClient = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
				_, err := env.svc.Start(context.Background(), StartRequest{Connection: "email", Email: "a@example.com", ClientIP: ip})
				return err
			},
		},
		{
			name: "start per destination, across spellings",
			set:  func(l *Limits) { l.StartPerDestination = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				phone := []string{"+46701111111", "+46 70-111 11 11", "0046701111111", " 46 701 111 111"}[i]
				_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: phone})
				return err
			},
		},
		{
			name: "start per email, across case",
			set:  func(l *Limits) { l.StartPerDestination = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				email := []string{"ann@example.com", "Ann@Example.com", " ANN@EXAMPLE.COM", "ann@EXAMPLE.com"}[i]
				_, err := env.svc.Start(context.Background(), StartRequest{Connection: "email", Email: email})
				return err
			},
		},
		{
			name:      "sends per destination, across sign-ins and resends",
			wantRetry: 30 * time.Minute,
			set:       func(l *Limits) { l.SendsPerDestination = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				if i%2 == 1 {
					env.clock.Advance(time.Nanosecond) // the resend interval
					_, err := env.svc.Resend(context.Background(), ResendRequest{Token: env.lastToken(t)})
					return err
				}
				_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
				return err
			},
		},
		{
			name: "SMS per country",
			set:  func(l *Limits) { l.SMSPerCountry = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				phone := []string{"+46701111111", "+46701111112", "+46701111113", "+46701111114"}[i]
				_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: phone})
				return err
			},
		},
		{
			name: "verify per IP",
			set:  func(l *Limits) { l.VerifyPerIP = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				_, err := env.verify("00000000-0000-4000-8000-000000000000", "123456")
				if errors.Is(err, ErrSignInNotFound) {
					return nil
				}
				return err
			},
		},
		{
			name: "resend per IP",
			set:  func(l *Limits) { l.ResendPerIP = limit },
			request: func(t *testing.T, env *testEnv, i int) error {
				_, err := env.resend("00000000-0000-4000-8000-000000000000")
				if errors.Is(err, ErrSignInNotFound) {
					return nil
				}
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, onlyLimit(tt.set))
			for i := range 3 {
				if err := tt.request(t, env, i); err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
			}

			err := tt.request(t, env, 3)
			var limited *RateLimitError
			if !errors.As(err, &limited) {
				t.Fatalf("request 4: err = %v, want a RateLimitError", err)
			}
			wantRetry := tt.wantRetry
			if wantRetry == 0 {
				wantRetry = 10 * time.Minute
			}
			// The resend case advances the clock by nanoseconds.
			if got := limited.Status.RetryAfter; got > wantRetry || got < wantRetry-time.Microsecond {
				t.Errorf("RetryAfter = %s, want %s", got, wantRetry)
			}
			if info := describeError(err, "", ""); info.status != 420 || info.description != "Request Ratelimit exceeded" {
				t.Errorf("answer = %d %q, want the contract's 420", info.status, info.description)
			}

			env.clock.Advance(limited.Status.RetryAfter - time.Second)
			if err := tt.request(t, env, 3); !errors.Is(err, ErrRateLimited) {
				t.Errorf("a second early: err = %v, want ErrRateLimited", err)
			}
			env.clock.Advance(time.Second)
			if err := tt.request(t, env, 3); err != nil {
				t.Errorf("at the documented time: %v", err)
			}
		})
	}
}

func (e *testEnv) lastToken(t *testing.T) string {
	t.Helper()
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if len(e.out.messages) == 0 {
		t.Fatal("no sign-in was started")
	}
	return e.out.messages[len(e.out.messages)-1].Token
}

func TestRefusedStartSpendsNoDestinationBudget(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.StartPerDestination = Limit{Quota: 5, Window: time.Hour}
		l.SendsPerDestination = Limit{Quota: 1, Window: time.Hour}
	}))
	env.start(t, "+46701111111")
	for range 10 {
		if _, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"}); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("err = %v, want ErrRateLimited", err)
		}
	}

	d, err := env.svc.limiter.Peek(context.Background(), env.svc.destinationPolicy("start-destination", "+46701111111", Limit{}).key, Limit{Quota: 5, Window: time.Hour})
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	// Peek reports the state after a hypothetical Take: 5 - 1 - 1.
	if d.Remaining != 3 {
		t.Errorf("start budget remaining after a Take = %d, want 3: refused starts must not spend it", d.Remaining)
	}
}

func TestRateStatusReportsTightestPolicy(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.StartPerIP = Limit{Quota: 100, Window: time.Hour}
		l.StartPerDestination = Limit{Quota: 3, Window: 15 * time.Minute}
		l.SMSPerCountry = Limit{Quota: 50, Window: time.Hour}
	}))

	res, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111", ClientIP: testIP})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	got := res.RateLimit
	if got.Policy != "start-destination" || got.Limit.Quota != 3 || got.Remaining != 2 || got.Reset != 5*time.Minute {
		t.Errorf("RateLimit = %+v, want start-destination with 2 of 3 left, reset in 5m", got)
	}

	_, err = env.svc.Start(context.Background(), StartRequest{Connection: "fax", ClientIP: testIP})
	if !errors.Is(err, ErrInvalidConnection) {
		t.Fatalf("err = %v, want ErrInvalidConnection", err)
	}
	res, _ = env.svc.Start(context.Background(), StartRequest{Connection: "fax", ClientIP: testIP})
	if res.RateLimit.Policy != "start-ip" || res.RateLimit.Remaining != 97 {
		t.Errorf("RateLimit on a rejected request = %+v, want the per-IP budget with 97 left", res.RateLimit)
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{VerifyPerIP: Limit{Quota: 7, Window: time.Minute}, SMSPerCountry: Limit{Quota: -1}}.withDefaults()
	def := DefaultLimits()
	if got.VerifyPerIP != (Limit{Quota: 7, Window: time.Minute}) {
		t.Errorf("VerifyPerIP = %+v, want the configured value", got.VerifyPerIP)
	}
	if got.SMSPerCountry.Enabled() {
		t.Errorf("SMSPerCountry = %+v, want it disabled", got.SMSPerCountry)
	}
	if got.StartPerIP != def.StartPerIP || got.FailuresPerDestination != def.FailuresPerDestination {
		t.Errorf("zero fields were not filled with the defaults: %+v", got)
	}
	if def.FailuresPerDestination != (Limit{Quota: 10, Window: 24 * time.Hour}) {
		t.Errorf("default FailuresPerDestination = %+v, want 10 per 24h", def.FailuresPerDestination)
	}
}

func TestRateStatusLeavesOutRefundedBudget(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.VerifyPerIP = Limit{Quota: 60, Window: 10 * time.Minute}
		l.FailuresPerDestination = Limit{Quota: 10, Window: 24 * time.Hour}
	}))
	token, code := env.start(t, "+46701111111")
	for range 3 {
		env.verify(token, wrongCode(code))
	}

	res, err := env.verify(token, code)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.RateLimit.Policy != "verify-ip" || res.RateLimit.Remaining != 56 {
		t.Errorf("RateLimit = %+v, want verify-ip with 56 left: the refunded failure budget must not be reported", res.RateLimit)
	}
}

func TestPerIPLimitCountsIPv6Network(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.StartPerIP = Limit{Quota: 2, Window: time.Hour}
	}))
	start := func(ip string) error {
		_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111", ClientIP: netip.MustParseAddr(ip)})
		return err
	}

	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if err := start(ip); err != nil {
			t.Fatalf("start from %s: %v", ip, err)
		}
	}
	if err := start("2001:db8:1:2:abcd::77"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("third address of the same /64: err = %v, want ErrRateLimited", err)
	}
	if err := start("2001:db8:1:3::1"); err != nil {
		t.Errorf("another /64: %v", err)
	}
}

func TestSecretRotationKeepsDestinationBudgets(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.FailuresPerDestination = Limit{Quota: 3, Window: time.Hour}
	}))
	token, code := env.start(t, "+46701111111")
	for range 3 {
		env.verify(token, wrongCode(code))
	}

	rotated, err := New(Config{
		Secret:          bytes.Repeat([]byte("n"), 32),
		PreviousSecrets: [][]byte{testSecret},
		Store:           env.store,
		Clients:         env.svc.clients,
		SMSSender:       env.out,
		Limiter:         env.svc.limiter,
		Limits:          env.svc.limits,
		Logger:          env.svc.logger,
		Now:             env.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = rotated.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	if !errors.Is(err, ErrRateLimited) {
		t.Errorf("start after rotation: err = %v, want the spent failure budget to hold", err)
	}
}
