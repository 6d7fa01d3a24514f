package passwordless

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func (e *testEnv) resend(token string) (ResendResult, error) {
	return e.svc.Resend(context.Background(), ResendRequest{Token: token, ClientIP: testIP})
}

func TestResendInvalidatesPreviousCode(t *testing.T) {
	env := newTestEnv(t, nil)
	token, oldCode := env.start(t, "+46701111111")

	env.clock.Advance(30 * time.Second)
	res, err := env.resend(token)
	if err != nil {
		t.Fatalf("Resend: %v", err)
	}
	if res.Token != token {
		t.Errorf("Token = %q, want %q", res.Token, token)
	}
	newCode := env.out.lastCode(t)

	if _, err := env.verify(token, oldCode); oldCode != newCode && !errors.Is(err, ErrCodeMismatch) {
		t.Errorf("previous code: err = %v, want ErrCodeMismatch", err)
	}
	if _, err := env.verify(token, newCode); err != nil {
		t.Errorf("new code: %v", err)
	}
}

func TestResendKeepsLocaleAndRecipient(t *testing.T) {
	env := newTestEnv(t, nil)
	res, err := env.svc.Start(context.Background(), StartRequest{Connection: "email", Email: "Ann@Example.com", Locale: "fi-FI"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	env.clock.Advance(time.Minute)
	if _, err := env.resend(res.Token); err != nil {
		t.Fatalf("Resend: %v", err)
	}

	msg := env.out.messages[1]
	if msg.To != "Ann@example.com" || msg.Locale.String() != "fi" || msg.Subject == "" {
		t.Errorf("resent message = to %q in %s with subject %q, want the first message's recipient and Finnish", msg.To, msg.Locale, msg.Subject)
	}
}

func TestResendDoesNotResetAttempts(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")
	for range 3 {
		env.verify(token, wrongCode(code))
	}

	env.clock.Advance(30 * time.Second)
	res, err := env.resend(token)
	if err != nil {
		t.Fatalf("Resend: %v", err)
	}
	if res.AttemptsLeft != 2 {
		t.Errorf("AttemptsLeft = %d, want 2", res.AttemptsLeft)
	}
	newCode := env.out.lastCode(t)
	for range 2 {
		env.verify(token, wrongCode(newCode))
	}
	if _, err := env.verify(token, newCode); !errors.Is(err, ErrTooManyAttempts) {
		t.Errorf("err = %v, want ErrTooManyAttempts: resend must not grant more guesses", err)
	}
	env.clock.Advance(30 * time.Second)
	var limited *ResendLimitError
	if _, err := env.resend(token); !errors.As(err, &limited) || limited.RetryAfter != -1 {
		t.Errorf("resend of a locked sign-in: err = %v, want a ResendLimitError with no sends left", err)
	}
}

func TestResendInterval(t *testing.T) {
	env := newTestEnv(t, nil)
	token, _ := env.start(t, "+46701111111")

	env.clock.Advance(10 * time.Second)
	_, err := env.resend(token)
	var limited *ResendLimitError
	if !errors.As(err, &limited) || !errors.Is(err, ErrResendLimited) {
		t.Fatalf("err = %v, want a ResendLimitError", err)
	}
	if limited.RetryAfter != 20*time.Second {
		t.Errorf("RetryAfter = %s, want 20s", limited.RetryAfter)
	}
	if info := describeError(err, "", ""); info.status != 429 || info.description != "Too many attempts made to resend code" {
		t.Errorf("answer = %d %q, want the contract's 429", info.status, info.description)
	}

	env.clock.Advance(20 * time.Second)
	if _, err := env.resend(token); err != nil {
		t.Errorf("after the interval: %v", err)
	}
}

func TestResendMaximum(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxResends = 2 })
	token, _ := env.start(t, "+46701111111")

	for i := 1; i <= 2; i++ {
		env.clock.Advance(30 * time.Second)
		res, err := env.resend(token)
		if err != nil {
			t.Fatalf("resend %d: %v", i, err)
		}
		wantNext := 30 * time.Second
		if i == 2 {
			wantNext = -1
		}
		if res.NextResendAfter != wantNext {
			t.Errorf("resend %d: NextResendAfter = %s, want %s", i, res.NextResendAfter, wantNext)
		}
	}

	env.clock.Advance(time.Minute)
	_, err := env.resend(token)
	var limited *ResendLimitError
	if !errors.As(err, &limited) || limited.RetryAfter != -1 {
		t.Errorf("third resend: err = %v, want a ResendLimitError with RetryAfter -1", err)
	}
	if got := env.out.count(); got != 3 {
		t.Errorf("messages sent = %d, want 3", got)
	}
}

func TestResendConcurrentSendsOnce(t *testing.T) {
	env := newTestEnv(t, nil)
	token, _ := env.start(t, "+46701111111")
	env.clock.Advance(30 * time.Second)

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = env.resend(token)
		}()
	}
	wg.Wait()

	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, ErrResendLimited) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || env.out.count() != 2 {
		t.Errorf("successful resends = %d, messages = %d, want 1 and 2", ok, env.out.count())
	}
}

func TestResendSendFailureRestoresCode(t *testing.T) {
	env := newTestEnv(t, nil)
	token, code := env.start(t, "+46701111111")
	env.clock.Advance(30 * time.Second)

	env.out.setFail(errors.New("gateway down"))
	if _, err := env.resend(token); !errors.Is(err, ErrSendFailed) {
		t.Fatalf("err = %v, want ErrSendFailed", err)
	}
	env.out.setFail(nil)

	if _, err := env.verify(token, code); err != nil {
		t.Errorf("the code sent before the failed resend: %v", err)
	}
}

func TestResendErrors(t *testing.T) {
	tests := []struct {
		name    string
		req     func(token string) ResendRequest
		wantErr error
	}{
		{"missing token", func(string) ResendRequest { return ResendRequest{} }, ErrMissingToken},
		{"unknown token", func(string) ResendRequest {
			return ResendRequest{Token: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"}
		}, ErrSignInNotFound},
		{"other client", func(token string) ResendRequest {
			return ResendRequest{Token: token, Credentials: Credentials{ClientID: "other"}}
		}, ErrClientMismatch},
		{"unknown client", func(token string) ResendRequest {
			return ResendRequest{Token: token, Credentials: Credentials{ClientID: "nobody"}}
		}, ErrUnknownClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			token, _ := env.start(t, "+46701111111")
			env.clock.Advance(time.Minute)
			if _, err := env.svc.Resend(context.Background(), tt.req(token)); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestResendStopsAtSignInTTL(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.SignInTTL = 20 * time.Minute })
	token, _ := env.start(t, "+46701111111")

	env.clock.Advance(19 * time.Minute)
	if _, err := env.resend(token); err != nil {
		t.Fatalf("resend before SignInTTL: %v", err)
	}
	env.clock.Advance(time.Minute)
	if _, err := env.resend(token); !errors.Is(err, ErrSignInNotFound) {
		t.Errorf("resend at SignInTTL: err = %v, want ErrSignInNotFound", err)
	}
	if _, err := env.verify(token, env.out.lastCode(t)); err != nil {
		t.Errorf("the code resent before SignInTTL still works until it expires: %v", err)
	}
}
