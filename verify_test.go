package passwordless

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifySuccess(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46 70-111 11 11")

	res, err := env.verify(token, code)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Identity{Connection: SMS, PhoneNumber: "+46701111111", Token: token, Locale: "en", ClientID: "app"}
	if res.Identity != want {
		t.Errorf("identity = %+v, want %+v", res.Identity, want)
	}
}

func TestVerifyEmailIdentityIsCaseFolded(t *testing.T) {
	env := newTestEnv(t, nil)
	res, err := env.svc.Start(context.Background(), StartRequest{Connection: "email", Email: "  Ann.Lee@Example.COM ", Locale: "sv_SE"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got := env.out.messages[0].To; got != "Ann.Lee@example.com" {
		t.Errorf("message sent to %q, want the typed address with the domain lowercased", got)
	}

	got, err := env.verify(res.Token, env.out.lastCode(t))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Identity.Email != "ann.lee@example.com" || got.Identity.Locale != "sv" {
		t.Errorf("identity = %+v, want email ann.lee@example.com and locale sv", got.Identity)
	}
}

func TestVerifyFailuresAreGeneric(t *testing.T) {
	tests := []struct {
		name   string
		run    func(t *testing.T, env *testEnv) error
		reason error
	}{
		{
			name: "wrong code",
			run: func(t *testing.T, env *testEnv) error {
				token, code := env.start(t, "+46701111111")
				_, err := env.verify(token, wrongCode(code))
				return err
			},
			reason: ErrCodeMismatch,
		},
		{
			name: "unknown token",
			run: func(t *testing.T, env *testEnv) error {
				_, err := env.verify("6f1c5e0e-5b8e-4f0e-9a39-2b8d1f6b7c11", "123456")
				return err
			},
			reason: ErrSignInNotFound,
		},
		{
			name: "expired code",
			run: func(t *testing.T, env *testEnv) error {
				token, code := env.start(t, "+46701111111")
				env.clock.Advance(10 * time.Minute)
				_, err := env.verify(token, code)
				return err
			},
			reason: ErrCodeExpired,
		},
		{
			name: "consumed token",
			run: func(t *testing.T, env *testEnv) error {
				token, code := env.start(t, "+46701111111")
				if _, err := env.verify(token, code); err != nil {
					t.Fatalf("first Verify: %v", err)
				}
				_, err := env.verify(token, code)
				return err
			},
			reason: ErrSignInNotFound,
		},
		{
			name: "identifier of another person",
			run: func(t *testing.T, env *testEnv) error {
				token, code := env.start(t, "+46701111111")
				_, err := env.svc.Verify(context.Background(), VerifyRequest{Token: token, Code: code, Identifier: "+46701111112"})
				return err
			},
			reason: ErrIdentifierMismatch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, nil)
			err := tt.run(t, env)
			if !errors.Is(err, ErrVerificationFailed) {
				t.Fatalf("err = %v, want ErrVerificationFailed", err)
			}
			if !errors.Is(err, tt.reason) {
				t.Errorf("err = %v, want reason %v", err, tt.reason)
			}
			if info := describeError(err, "", ""); info.status != 400 || info.description != "Invalid or expired code" {
				t.Errorf("answer = %d %q, want 400 with the generic description", info.status, info.description)
			}
		})
	}
}

func TestVerifyIdentifierSpellingsMatch(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	_, err := env.svc.Verify(context.Background(), VerifyRequest{Token: token, Code: code, Identifier: "0046 70 111 11 11"})
	if err != nil {
		t.Errorf("Verify with another spelling of the number: %v", err)
	}
}

func TestVerifyCodeExpiresAtConfiguredTTL(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.CodeTTL = 5 * time.Minute })
	token, code := env.start(t, "+46701111111")

	env.clock.Advance(5*time.Minute - time.Second)
	if _, err := env.verify(token, wrongCode(code)); !errors.Is(err, ErrCodeMismatch) {
		t.Fatalf("before expiry: err = %v, want ErrCodeMismatch", err)
	}
	env.clock.Advance(time.Second)
	if _, err := env.verify(token, code); !errors.Is(err, ErrCodeExpired) {
		t.Errorf("at expiry: err = %v, want ErrCodeExpired", err)
	}
}

func TestVerifyAttemptLimitInvalidatesSignIn(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	for i := 1; i <= 5; i++ {
		_, err := env.verify(token, wrongCode(code))
		var verr *VerifyError
		if !errors.As(err, &verr) || !errors.Is(err, ErrCodeMismatch) {
			t.Fatalf("attempt %d: err = %v, want ErrCodeMismatch", i, err)
		}
		if verr.AttemptsLeft != 5-i {
			t.Errorf("attempt %d: AttemptsLeft = %d, want %d", i, verr.AttemptsLeft, 5-i)
		}
	}

	_, err := env.verify(token, code)
	if !errors.Is(err, ErrTooManyAttempts) {
		t.Errorf("right code after 5 failures: err = %v, want ErrTooManyAttempts", err)
	}
	env.clock.Advance(time.Hour - time.Second)
	if _, err := env.verify(token, code); !errors.Is(err, ErrTooManyAttempts) {
		t.Errorf("right code much later: err = %v, want the sign-in to stay dead", err)
	}
}

func TestVerifyConcurrentRightCodesSucceedOnce(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	errs := verifyConcurrently(env, token, code, 50)
	successes := 0
	for _, err := range errs {
		if err == nil {
			successes++
		} else if !errors.Is(err, ErrVerificationFailed) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if successes != 1 {
		t.Errorf("successes = %d, want exactly 1", successes)
	}
}

func TestVerifyConcurrentWrongCodesHoldLimit(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	errs := verifyConcurrently(env, token, wrongCode(code), 50)
	compared, locked := 0, 0
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrCodeMismatch):
			compared++
		case errors.Is(err, ErrTooManyAttempts):
			locked++
		default:
			t.Errorf("unexpected result: %v", err)
		}
	}
	if compared != 5 || locked != 45 {
		t.Errorf("compared = %d, locked = %d, want 5 and 45", compared, locked)
	}
	if _, err := env.verify(token, code); !errors.Is(err, ErrTooManyAttempts) {
		t.Errorf("right code afterwards: err = %v, want ErrTooManyAttempts", err)
	}
}

func verifyConcurrently(env *testEnv, token, code string, n int) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	ready.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Wait()
			_, errs[i] = env.verify(token, code)
		}()
	}
	ready.Done()
	done.Wait()
	return errs
}

func TestVerifyFailureBudgetSpansSignIns(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Limits.StartPerDestination = Limit{Quota: 100, Window: time.Hour}
		c.Limits.SendsPerDestination = Limit{Quota: 100, Window: time.Hour}
	})

	// Two sign-ins with 5 failures each spend the default budget of 10.
	for range 2 {
		token, code := env.start(t, "+46701111111")
		for range 5 {
			if _, err := env.verify(token, wrongCode(code)); !errors.Is(err, ErrCodeMismatch) {
				t.Fatalf("err = %v, want ErrCodeMismatch", err)
			}
		}
	}

	_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46 70 111 11 11"})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("start after the budget is spent: err = %v, want ErrRateLimited", err)
	}

	// Another number is not affected.
	otherToken, otherCode := env.start(t, "+46701111112")
	if _, err := env.verify(otherToken, otherCode); err != nil {
		t.Errorf("other destination: %v", err)
	}

	// Each failure leaves the window 24 hours after it happened.
	env.clock.Advance(24 * time.Hour)
	token, code := env.start(t, "+46701111111")
	if _, err := env.verify(token, code); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestVerifyFailureBudgetLocksOpenSignIn(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Limits.FailuresPerDestination = Limit{Quota: 3, Window: time.Hour}
	})
	first, firstCode := env.start(t, "+46701111111")
	second, secondCode := env.start(t, "+46701111111")

	for range 3 {
		if _, err := env.verify(first, wrongCode(firstCode)); !errors.Is(err, ErrCodeMismatch) {
			t.Fatalf("err = %v, want ErrCodeMismatch", err)
		}
	}
	_, err := env.verify(second, secondCode)
	var verr *VerifyError
	if !errors.As(err, &verr) || !errors.Is(err, ErrDestinationLocked) {
		t.Fatalf("right code on another sign-in: err = %v, want ErrDestinationLocked", err)
	}
	if verr.AttemptsLeft != 0 {
		t.Errorf("AttemptsLeft = %d, want 0", verr.AttemptsLeft)
	}
}

func TestVerifySuccessDoesNotSpendFailureBudget(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Limits.FailuresPerDestination = Limit{Quota: 2, Window: time.Hour}
		c.Limits.StartPerDestination = Limit{Quota: 100, Window: time.Hour}
		c.Limits.SendsPerDestination = Limit{Quota: 100, Window: time.Hour}
	})
	for i := range 5 {
		token, code := env.start(t, "+46701111111")
		if _, err := env.verify(token, code); err != nil {
			t.Fatalf("sign-in %d: %v", i, err)
		}
	}
}

func TestVerifyByOtherClient(t *testing.T) {
	tests := []struct {
		client  string
		wantErr error
	}{
		{client: "app"},
		{client: "admin"},
		{client: "other", wantErr: ErrClientMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			env := newTestEnv(t, nil)
			token, code := env.start(t, "+46701111111")
			_, err := env.svc.Verify(context.Background(), VerifyRequest{
				Token: token, Code: code, Credentials: Credentials{ClientID: tt.client},
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyMissingParameters(t *testing.T) {
	env := newTestEnv(t, nil)
	tests := []struct {
		name      string
		req       VerifyRequest
		wantParam string
		wantErr   error
	}{
		{"no token", VerifyRequest{Code: "123456"}, "passwordlessToken", ErrMissingToken},
		{"no code", VerifyRequest{Token: "t"}, "code", ErrMissingCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.svc.Verify(context.Background(), tt.req)
			var pe *ParamError
			if !errors.As(err, &pe) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want a ParamError for %v", err, tt.wantErr)
			}
			if pe.Param != tt.wantParam {
				t.Errorf("Param = %q, want %q", pe.Param, tt.wantParam)
			}
		})
	}
}

func TestVerifySecretRotation(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	newSecret := []byte(strings.Repeat("n", 32))
	rotated, err := New(Config{
		Secret:          newSecret,
		PreviousSecrets: [][]byte{testSecret},
		Store:           env.store,
		Clients:         env.svc.clients,
		SMSSender:       env.out,
		Limiter:         env.svc.limiter,
		Logger:          env.svc.logger,
		Now:             env.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := rotated.Verify(context.Background(), VerifyRequest{Token: token, Code: code}); err != nil {
		t.Errorf("code hashed with the previous secret: %v", err)
	}
}

func TestStoredSignInHoldsNoCode(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	signIn, err := env.store.Get(context.Background(), token)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if strings.Contains(string(signIn.CodeHash), code) || len(signIn.CodeHash) != 32 {
		t.Errorf("CodeHash = %x, want a 32-byte HMAC without the code", signIn.CodeHash)
	}
	if want := hashCode(testSecret, token, code); string(signIn.CodeHash) != string(want) {
		t.Errorf("CodeHash is not the keyed hash of the code")
	}
}

func TestVerifyAcceptsSpacedCode(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")

	spaced := " " + code[:3] + " " + code[3:] + "\t"
	if _, err := env.verify(token, spaced); err != nil {
		t.Errorf("Verify(%q): %v", spaced, err)
	}
}

func TestVerifyBlankCodeIsMissing(t *testing.T) {
	env := newTestEnv(t, nil)
	token, _ := env.start(t, "+46701111111")

	if _, err := env.verify(token, " - "); !errors.Is(err, ErrMissingCode) {
		t.Errorf("err = %v, want ErrMissingCode", err)
	}
}

func TestVerifyFailureBudgetIsSlidingWindow(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.FailuresPerDestination = Limit{Quota: 10, Window: 24 * time.Hour}
	}))
	fail := func(n int) {
		t.Helper()
		for range n {
			token, code := env.start(t, "+46701111111")
			if _, err := env.verify(token, wrongCode(code)); !errors.Is(err, ErrCodeMismatch) {
				t.Fatalf("err = %v, want ErrCodeMismatch", err)
			}
		}
	}

	// Nine failures now and one more after a pause spend the budget.
	fail(9)
	env.clock.Advance(3 * time.Hour)
	fail(1)

	// A budget that refilled evenly would allow a guess every 2.4 hours;
	// this one allows none until the first failures are 24 hours old.
	env.clock.Advance(20*time.Hour + 59*time.Minute)
	_, err := env.svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	var limited *RateLimitError
	if !errors.As(err, &limited) {
		t.Fatalf("start 23h59m after the first failures: err = %v, want a RateLimitError", err)
	}
	if limited.Status.RetryAfter != time.Minute {
		t.Errorf("RetryAfter = %s, want 1m, when the oldest failures are a day old", limited.Status.RetryAfter)
	}

	env.clock.Advance(time.Minute)
	token, code := env.start(t, "+46701111111")
	if _, err := env.verify(token, code); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestVerifyConcurrentFailuresHoldDestinationBudget(t *testing.T) {
	env := newTestEnv(t, onlyLimit(func(l *Limits) {
		l.FailuresPerDestination = Limit{Quota: 10, Window: 24 * time.Hour}
	}))
	type signIn struct{ token, code string }
	var signIns []signIn
	for range 4 {
		token, code := env.start(t, "+46701111111")
		signIns = append(signIns, signIn{token, code})
	}

	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := signIns[i%len(signIns)]
			_, errs[i] = env.verify(s.token, wrongCode(s.code))
		}()
	}
	wg.Wait()

	compared := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrCodeMismatch):
			compared++
		case errors.Is(err, ErrTooManyAttempts), errors.Is(err, ErrDestinationLocked):
		default:
			t.Errorf("unexpected result: %v", err)
		}
	}
	if compared != 10 {
		t.Errorf("codes compared = %d, want exactly the budget of 10", compared)
	}
}
