package passwordless

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ResendRequest is a request for a new code for a sign-in.
type ResendRequest struct {
	// Token is the passwordless token that Start returned.
	Token string
	// Credentials identify the API client. It must be the client that
	// started the sign-in or one that administers it.
	Credentials Credentials
	// ClientIP is the user's address. The zero Addr skips the per-IP
	// limits.
	ClientIP netip.Addr
}

// ResendResult is the outcome of a successful Resend.
type ResendResult struct {
	// Token is the sign-in's passwordless token, unchanged.
	Token string
	// NextResendAfter is the time until another resend is allowed, or -1
	// when the sign-in has no resends left.
	NextResendAfter time.Duration
	// AttemptsLeft is the number of checks the sign-in still accepts.
	AttemptsLeft int
	// RateLimit is the tightest rate-limit budget the request used. Resend
	// sets it even when it returns an error.
	RateLimit RateStatus
}

// Resend sends a new code for a sign-in and invalidates the previous one.
// It keeps the sign-in's failed-attempt count, so resending never grants
// more guesses. Resends must be ResendInterval apart and at most
// MaxResends per sign-in; otherwise Resend returns a *ResendLimitError.
// An unknown or expired token gives ErrSignInNotFound.
func (s *Service) Resend(ctx context.Context, req ResendRequest) (ResendResult, error) {
	rates := &rateTracker{svc: s}
	result, err := s.resend(ctx, req, rates)
	result.RateLimit = rates.status()
	return result, err
}

func (s *Service) resend(ctx context.Context, req ResendRequest, rates *rateTracker) (ResendResult, error) {
	caller, err := s.authorize(ctx, EndpointResend, req.Credentials, req.ClientIP)
	if err != nil {
		return ResendResult{}, err
	}
	err = rates.take(ctx,
		ipPolicy("resend-ip", req.ClientIP, s.limits.ResendPerIP),
		clientPolicy("resend-client", caller.ClientID, s.limits.ResendPerClient))
	if err != nil {
		return ResendResult{}, err
	}
	if req.Token == "" {
		return ResendResult{}, &ParamError{Param: "passwordlessToken", Err: ErrMissingToken}
	}

	signIn, err := s.store.Get(ctx, req.Token)
	if err != nil {
		return ResendResult{}, s.resendLookupFailed("get", req.Token, err)
	}
	if !caller.mayActFor(signIn.ClientID) {
		return ResendResult{}, ErrClientMismatch
	}
	if !s.now().Before(signIn.CreatedAt.Add(s.signInTTL)) {
		return ResendResult{}, ErrSignInNotFound
	}
	if wait := s.resendAfter(signIn); wait != 0 {
		return ResendResult{}, &ResendLimitError{RetryAfter: wait, AttemptsLeft: max(s.maxAttempts-signIn.Attempts, 0)}
	}

	dest := destination{connection: signIn.Connection, address: signIn.Recipient, canonical: signIn.Identifier}
	if signIn.Connection == SMS {
		parsed, err := parsePhone("phoneNumber", signIn.Recipient, "")
		if err != nil {
			return ResendResult{}, s.storeFailed("parse stored recipient", signIn.Token, err)
		}
		dest.region = parsed.region
	}
	sender, ok := s.senders[dest.connection]
	if !ok {
		return ResendResult{}, &ParamError{Param: "connection", Err: ErrNoSender}
	}
	if err := rates.checkSlots(ctx, s.failureBudget(dest.canonical)); err != nil {
		return ResendResult{}, err
	}
	sendPolicies, err := s.takeSendBudgets(ctx, rates, dest)
	if err != nil {
		return ResendResult{}, err
	}

	code, err := generateCode(s.random, s.codeLength)
	if err != nil {
		rates.refund(ctx, sendPolicies...)
		return ResendResult{}, err
	}
	now := s.now()
	previous := CodeState{CodeHash: signIn.CodeHash, CodeExpiresAt: signIn.CodeExpiresAt, SentAt: signIn.SentAt, Sends: signIn.Sends}
	next := CodeState{
		CodeHash:      hashCode(s.secrets[0], signIn.Token, code),
		CodeExpiresAt: now.Add(s.codeTTL),
		SentAt:        now,
		Sends:         signIn.Sends + 1,
	}
	updated, err := s.store.SetCode(ctx, signIn.Token, signIn.CodeHash, next)
	if err != nil {
		rates.refund(ctx, sendPolicies...)
		if errors.Is(err, ErrConflict) {
			// Another resend won the race and sent a code just now.
			return ResendResult{}, &ResendLimitError{RetryAfter: s.resendInterval, AttemptsLeft: max(s.maxAttempts-signIn.Attempts, 0)}
		}
		return ResendResult{}, s.resendLookupFailed("set code", signIn.Token, err)
	}

	localeIndex := s.catalog.match(updated.Locale)
	if err := s.send(ctx, sender, updated, localeIndex, code); err != nil {
		// The user may never get the new code, so put back the one they
		// hold, unless yet another code replaced it meanwhile. The send
		// budgets stay spent, as in Start, because the message may have
		// gone out all the same.
		cleanup, cancel := cleanupContext(ctx)
		defer cancel()
		if _, restoreErr := s.store.SetCode(cleanup, signIn.Token, next.CodeHash, previous); restoreErr != nil && !errors.Is(restoreErr, ErrConflict) {
			s.logger.Error("passwordless: restoring the previous code after a failed send failed", "token", signIn.Token, "error", restoreErr)
		}
		return ResendResult{}, err
	}

	return ResendResult{
		Token:           updated.Token,
		NextResendAfter: s.resendAfter(updated),
		AttemptsLeft:    max(s.maxAttempts-updated.Attempts, 0),
	}, nil
}

func (s *Service) resendLookupFailed(op, token string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrSignInNotFound
	}
	return s.storeFailed(op, token, err)
}
