package passwordless

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"
)

// VerifyRequest is a request to check a code.
type VerifyRequest struct {
	// Token is the passwordless token that Start returned.
	Token string
	// Code is the one-time code the user received.
	Code string
	// Identifier is the email address or phone number the code was sent
	// to. It is optional; when present it must match the sign-in.
	Identifier string
	// Credentials identify the API client. It must be the client that
	// started the sign-in or one that administers it.
	Credentials Credentials
	// ClientIP is the user's address. The zero Addr skips the per-IP
	// limits.
	ClientIP netip.Addr
}

// Identity is a verified email address or phone number.
type Identity struct {
	// Connection is the channel the code was sent by.
	Connection Connection `json:"connection"`
	// Email is the case-folded email address, for the email connection.
	Email string `json:"email,omitempty"`
	// PhoneNumber is the E.164 phone number, for the SMS connection.
	PhoneNumber string `json:"phoneNumber,omitempty"`
	// Token is the passwordless token of the completed sign-in.
	Token string `json:"passwordlessToken"`
	// Locale is the BCP 47 tag of the language the code was sent in.
	Locale string `json:"locale"`
	// ClientID is the API client that started the sign-in.
	ClientID string `json:"clientId"`
}

// VerifyResult is the outcome of a successful Verify.
type VerifyResult struct {
	Identity Identity
	// RateLimit is the tightest rate-limit budget the request used. Verify
	// sets it even when it returns an error.
	RateLimit RateStatus
}

// Verify checks the code of a sign-in and, if it is right, consumes the
// sign-in and returns the verified identity.
//
// Every failed check returns a *VerifyError that matches
// ErrVerificationFailed, whether the code was wrong or expired, the token
// unknown or used, the identifier different or a limit reached; its Reason
// distinguishes them in logs. A sign-in accepts at most MaxAttempts checks,
// counted before the code is compared, so concurrent guesses cannot exceed
// it; after that even the right code fails. Failed checks also spend the
// destination's FailuresPerDestination budget, which spans sign-ins.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	rates := &rateTracker{svc: s}
	identity, err := s.verify(ctx, req, rates)
	return VerifyResult{Identity: identity, RateLimit: rates.status()}, err
}

func (s *Service) verify(ctx context.Context, req VerifyRequest, rates *rateTracker) (Identity, error) {
	caller, err := s.authorize(ctx, EndpointVerify, req.Credentials, req.ClientIP)
	if err != nil {
		return Identity{}, err
	}
	err = rates.take(ctx,
		ipPolicy("verify-ip", req.ClientIP, s.limits.VerifyPerIP),
		clientPolicy("verify-client", caller.ClientID, s.limits.VerifyPerClient))
	if err != nil {
		return Identity{}, err
	}
	if req.Token == "" {
		return Identity{}, &ParamError{Param: "passwordlessToken", Err: ErrMissingToken}
	}
	code := normalizeCode(req.Code)
	if code == "" {
		return Identity{}, &ParamError{Param: "code", Err: ErrMissingCode}
	}

	signIn, err := s.store.Get(ctx, req.Token)
	if err != nil {
		return Identity{}, s.lookupFailed("get", req.Token, err)
	}
	if !caller.mayActFor(signIn.ClientID) {
		return Identity{}, ErrClientMismatch
	}
	if signIn.Attempts >= s.maxAttempts {
		return Identity{}, s.verifyFailed(ErrTooManyAttempts, signIn)
	}

	// Count the attempt before comparing, in one atomic step, so that
	// concurrent checks cannot run past the limit.
	signIn, err = s.store.AddAttempt(ctx, req.Token)
	if err != nil {
		return Identity{}, s.lookupFailed("add attempt", req.Token, err)
	}
	if signIn.Attempts > s.maxAttempts {
		return Identity{}, s.verifyFailed(ErrTooManyAttempts, signIn)
	}
	if !s.now().Before(signIn.CodeExpiresAt) {
		return Identity{}, s.verifyFailed(ErrCodeExpired, signIn)
	}

	// A failure is reserved before the comparison and refunded on
	// success, so concurrent failures across sign-ins cannot exceed the
	// budget.
	failure, err := rates.reserveSlot(ctx, s.failureBudget(signIn.Identifier))
	if err != nil {
		if errors.Is(err, ErrRateLimited) {
			return Identity{}, s.verifyFailed(ErrDestinationLocked, signIn)
		}
		return Identity{}, err
	}

	if req.Identifier != "" && !s.sameIdentifier(signIn, req.Identifier) {
		return Identity{}, s.verifyFailed(ErrIdentifierMismatch, signIn)
	}
	if !matchCode(s.secrets, signIn.Token, code, signIn.CodeHash) {
		return Identity{}, s.verifyFailed(ErrCodeMismatch, signIn)
	}

	if err := s.store.Consume(ctx, signIn.Token, signIn.CodeHash); err != nil {
		if errors.Is(err, ErrConflict) {
			// A resend replaced the code after it was read: the code the
			// user typed is no longer the current one.
			return Identity{}, s.verifyFailed(ErrCodeMismatch, signIn)
		}
		return Identity{}, s.lookupFailed("consume", signIn.Token, err)
	}
	rates.refund(ctx, failure)
	return identityOf(signIn), nil
}

// normalizeCode removes the spaces and hyphens that users type or paste
// inside a code, such as "123 456" or "123-456".
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code)
}

// sameIdentifier reports whether raw is the sign-in's email address or
// phone number in any accepted spelling.
func (s *Service) sameIdentifier(signIn SignIn, raw string) bool {
	var dest destination
	var err error
	if signIn.Connection == SMS {
		dest, err = parsePhone("identifier", raw, s.region)
	} else {
		dest, err = parseEmail("identifier", raw)
	}
	return err == nil && dest.canonical == signIn.Identifier
}

func identityOf(signIn SignIn) Identity {
	id := Identity{
		Connection: signIn.Connection,
		Token:      signIn.Token,
		Locale:     signIn.Locale,
		ClientID:   signIn.ClientID,
	}
	if signIn.Connection == SMS {
		id.PhoneNumber = signIn.Identifier
	} else {
		id.Email = signIn.Identifier
	}
	return id
}

// verifyFailed builds the error for a failed check of signIn.
func (s *Service) verifyFailed(reason error, signIn SignIn) error {
	left := max(s.maxAttempts-signIn.Attempts, 0)
	if errors.Is(reason, ErrTooManyAttempts) || errors.Is(reason, ErrDestinationLocked) {
		left = 0
	}
	return &VerifyError{Reason: reason, AttemptsLeft: left, ResendAfter: s.resendAfter(signIn)}
}

// resendAfter returns the time until signIn may be sent again, or -1 if it
// may not be sent again at all.
func (s *Service) resendAfter(signIn SignIn) time.Duration {
	if signIn.Attempts >= s.maxAttempts || signIn.Sends > s.maxResends {
		return -1
	}
	return max(signIn.SentAt.Add(s.resendInterval).Sub(s.now()), 0)
}

// lookupFailed turns a store error about a token into the error to return:
// a missing sign-in is a failed verification, anything else a store failure.
func (s *Service) lookupFailed(op, token string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return &VerifyError{Reason: ErrSignInNotFound, ResendAfter: -1}
	}
	return s.storeFailed(op, token, err)
}
