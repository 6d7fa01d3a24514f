package passwordless

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors about the request's parameters. Service methods wrap them in a
// *ParamError that names the parameter.
var (
	// ErrMissingConnection means the request named no connection.
	ErrMissingConnection = errors.New("passwordless: missing connection")
	// ErrInvalidConnection means the connection is neither sms nor email.
	ErrInvalidConnection = errors.New("passwordless: invalid connection, expected sms or email")
	// ErrInvalidIdentifier means the phone number or email address is empty
	// or not valid for the connection.
	ErrInvalidIdentifier = errors.New("passwordless: invalid or empty phone number or email address")
	// ErrMissingToken means the request carried no passwordless token.
	ErrMissingToken = errors.New("passwordless: missing passwordless token")
	// ErrMissingCode means a verify request carried no code.
	ErrMissingCode = errors.New("passwordless: missing code")
	// ErrRepeatedParameter means a parameter was sent more than once, or
	// under both of its spellings.
	ErrRepeatedParameter = errors.New("passwordless: parameter sent more than once")
	// ErrInvalidParameter means a parameter has the wrong type, such as a
	// JSON number or array where a string belongs.
	ErrInvalidParameter = errors.New("passwordless: invalid parameter value")
)

// Errors about the calling client, returned by a ClientAuthority and passed
// through by the service.
var (
	// ErrUnknownClient means the client ID is not registered.
	ErrUnknownClient = errors.New("passwordless: unknown client ID")
	// ErrClientMismatch means the caller acts on a resource of another
	// client that it does not administer.
	ErrClientMismatch = errors.New("passwordless: client ID mismatch")
	// ErrUserNotAdmin means a user's access token names a client that the
	// user does not administer.
	ErrUserNotAdmin = errors.New("passwordless: user has no administration rights for this client")
	// ErrClientNotAdmin means a client's access token names another client
	// that the calling client does not administer.
	ErrClientNotAdmin = errors.New("passwordless: client has no administration rights for this client")
	// ErrEndpointNotAllowed means the client may not call this endpoint.
	ErrEndpointNotAllowed = errors.New("passwordless: client is not authorized for this endpoint")
	// ErrIPNotAllowed means the request's IP address is not on the client's
	// allowlist.
	ErrIPNotAllowed = errors.New("passwordless: requesting IP is not allowed for this client")
	// ErrTokenNotAllowed means the access token may not call this endpoint.
	ErrTokenNotAllowed = errors.New("passwordless: access token is not authorized for this endpoint")
	// ErrInvalidAccessToken means the bearer token is unknown or expired.
	ErrInvalidAccessToken = errors.New("passwordless: invalid or expired access token")
	// ErrInvalidClientCredentials means the client secret is wrong, or
	// missing for a client that must authenticate.
	ErrInvalidClientCredentials = errors.New("passwordless: invalid client credentials")
	// ErrMissingClient means the request identified no client and no
	// default client is configured.
	ErrMissingClient = errors.New("passwordless: missing client credentials")
)

// clientErrors are the errors a ClientAuthority returns for a rejected
// caller, as opposed to a failure of its own.
var clientErrors = []error{
	ErrUnknownClient, ErrClientMismatch, ErrUserNotAdmin, ErrClientNotAdmin,
	ErrEndpointNotAllowed, ErrIPNotAllowed, ErrTokenNotAllowed,
	ErrInvalidAccessToken, ErrInvalidClientCredentials, ErrMissingClient,
}

func isClientError(err error) bool {
	for _, target := range clientErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// ErrVerificationFailed is the one error that Verify returns for every
// failed check, whatever the reason, so that callers respond alike. Use
// errors.Is with the reasons below to tell the cases apart in logs.
var ErrVerificationFailed = errors.New("passwordless: verification failed")

// Reasons a verification fails. A *VerifyError wraps both one of these and
// ErrVerificationFailed.
var (
	// ErrCodeMismatch means the code is not the one sent last.
	ErrCodeMismatch = errors.New("passwordless: wrong code")
	// ErrIdentifierMismatch means the phone number or email address is not
	// the one the code was sent to.
	ErrIdentifierMismatch = errors.New("passwordless: identifier does not match the sign-in")
	// ErrCodeExpired means the code's lifetime has passed.
	ErrCodeExpired = errors.New("passwordless: code expired")
	// ErrSignInNotFound means the token is unknown, already used or removed.
	ErrSignInNotFound = errors.New("passwordless: sign-in not found or already used")
	// ErrTooManyAttempts means the token's failed checks reached the limit,
	// so the sign-in no longer accepts any code.
	ErrTooManyAttempts = errors.New("passwordless: too many failed attempts for this sign-in")
	// ErrDestinationLocked means the destination's failure budget is spent,
	// so no sign-in to it is accepted until the window passes.
	ErrDestinationLocked = errors.New("passwordless: too many failed attempts for this destination")
)

// Errors about limits and delivery.
var (
	// ErrRateLimited means a rate-limit policy refused the request. The
	// error is a *RateLimitError that carries the decision.
	ErrRateLimited = errors.New("passwordless: rate limit exceeded")
	// ErrResendLimited means a resend came too early or past the maximum
	// number of sends. The error is a *ResendLimitError.
	ErrResendLimited = errors.New("passwordless: too many attempts made to resend code")
	// ErrCountryNotAllowed means SMS to the phone number's country is not
	// enabled.
	ErrCountryNotAllowed = errors.New("passwordless: SMS to this country is not enabled")
	// ErrLimiterUnavailable means the rate limiter failed, so the request
	// was rejected rather than let through unchecked.
	ErrLimiterUnavailable = errors.New("passwordless: rate limiter unavailable")
	// ErrClientsUnavailable means the ClientAuthority failed for a reason
	// other than the client errors above.
	ErrClientsUnavailable = errors.New("passwordless: client authority unavailable")
	// ErrStoreUnavailable means the store failed.
	ErrStoreUnavailable = errors.New("passwordless: store unavailable")
	// ErrSendFailed means the sender could not deliver the message. Start
	// removes the sign-in it created before it returns this error.
	ErrSendFailed = errors.New("passwordless: sending the message failed")
	// ErrNoSender means no sender is configured for the connection.
	ErrNoSender = errors.New("passwordless: no sender configured for this connection")
)

// Errors that Store implementations return.
var (
	// ErrNotFound means the store holds no sign-in for the token, or the
	// sign-in has expired.
	ErrNotFound = errors.New("passwordless: not found")
	// ErrConflict means a conditional store update lost a race: the
	// sign-in's code changed since it was read.
	ErrConflict = errors.New("passwordless: conflicting update")
	// ErrDuplicateToken means Create found a sign-in with the same token.
	ErrDuplicateToken = errors.New("passwordless: duplicate token")
)

// ParamError is an error about one request parameter.
type ParamError struct {
	// Param is the parameter's name as the library spells it, such as
	// "phoneNumber"; the handler reports the spelling the client used.
	Param string
	// Err is the sentinel error, such as ErrInvalidIdentifier.
	Err error
	// Detail explains the problem further; it never contains the value.
	Detail string
}

func (e *ParamError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v (parameter %s)", e.Err, e.Param)
	}
	return fmt.Sprintf("%v (parameter %s): %s", e.Err, e.Param, e.Detail)
}

func (e *ParamError) Unwrap() error { return e.Err }

// VerifyError is the error Verify returns. It matches ErrVerificationFailed
// and its Reason with errors.Is.
type VerifyError struct {
	// Reason is one of ErrCodeMismatch, ErrIdentifierMismatch,
	// ErrCodeExpired, ErrSignInNotFound, ErrTooManyAttempts and
	// ErrDestinationLocked.
	Reason error
	// AttemptsLeft is the number of checks the sign-in still accepts; zero
	// when it accepts none.
	AttemptsLeft int
	// ResendAfter is the time until a resend of the sign-in is allowed, or
	// zero when it is allowed now. It is -1 when no resend is possible.
	ResendAfter time.Duration
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("%v: %v", ErrVerificationFailed, e.Reason)
}

// Unwrap returns ErrVerificationFailed and the reason.
func (e *VerifyError) Unwrap() []error { return []error{ErrVerificationFailed, e.Reason} }

// RateLimitError is the error a refused rate-limit policy causes. It
// matches ErrRateLimited with errors.Is.
type RateLimitError struct {
	// Status is the refusing policy's budget state.
	Status RateStatus
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v, retry after %s", ErrRateLimited, e.Status.RetryAfter.Round(time.Second))
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// ResendLimitError is the error Resend returns when the sign-in may not be
// sent again yet, or at all. It matches ErrResendLimited with errors.Is.
type ResendLimitError struct {
	// RetryAfter is the time until the next send is allowed; -1 when the
	// sign-in has used all its sends.
	RetryAfter time.Duration
	// AttemptsLeft is the number of checks the sign-in still accepts.
	AttemptsLeft int
}

func (e *ResendLimitError) Error() string {
	if e.RetryAfter < 0 {
		return fmt.Sprintf("%v: no sends left for this sign-in", ErrResendLimited)
	}
	return fmt.Sprintf("%v: next send allowed in %s", ErrResendLimited, e.RetryAfter.Round(time.Second))
}

func (e *ResendLimitError) Unwrap() error { return ErrResendLimited }

// wrapErr joins a public sentinel with the underlying cause so that both
// match errors.Is, while the message shows the cause for logs.
func wrapErr(sentinel, cause error) error {
	if cause == nil {
		return sentinel
	}
	return fmt.Errorf("%w: %w", sentinel, cause)
}

// Descriptions the wire contract documents. Clients match some of them
// verbatim, so they keep the upstream wording and spelling.
const (
	descMissingConnection  = "Missing connection"
	descInvalidIdentifier  = "Invalid/empty phone or email"
	descUserNotAdmin       = "You don't have administration rights for this client."
	descClientNotAdmin     = "Your client doesn't have administration rights for this client."
	descEndpointNotAllowed = "Client is not authorized to access this API endpoint. Contact %s to request access."
	descIPNotAllowed       = "Requesting IP is not whitelisted"
	descTokenNotAllowed    = "Token is not authorized to access this endpoint"
	descUnknownClient      = "Unknown client ID"
	descClientMismatch     = "Client ID mismatch. The client making the request is no the owner of this resource, and does not have administrative privileges for it."
	descRateLimited        = "Request Ratelimit exceeded"
	descMissingToken       = "Missing passwordlessToken"
	descResendLimited      = "Too many attempts made to resend code"
)

// StatusRateLimited is the status the wire contract uses for rate limits.
// It is not a registered HTTP status: net/http writes its status line as
// "420 status code 420".
const StatusRateLimited = 420

// HTTPStatus returns the HTTP status of the Handler's response to err. Bad
// parameters and failed verifications give 400, and client errors the
// contract's 401, 403 and 404. Rate limits give 420 and resend limits 429.
// A failed send gives 502, a failed backend 503, and anything else 500.
func HTTPStatus(err error) int {
	return describeError(err, "", "").status
}

// errorInfo is the handler's response to an error.
type errorInfo struct {
	status      int
	description string
	// oauthCode is the RFC 6749 error code of the flat style.
	oauthCode string
}

// describeError maps an error from the Service to its HTTP status and
// documented description. param is the parameter's name as the client
// spelled it, for descriptions that name it; product replaces the product
// name in the 403 text. It never includes the error's own text, which may
// carry internal details.
func describeError(err error, param, product string) errorInfo {
	badRequest := func(desc string) errorInfo {
		return errorInfo{http.StatusBadRequest, desc, "invalid_request"}
	}

	switch {
	case errors.Is(err, ErrVerificationFailed):
		return errorInfo{http.StatusBadRequest, "Invalid or expired code", "invalid_grant"}
	case errors.Is(err, ErrMissingConnection):
		return badRequest(descMissingConnection)
	case errors.Is(err, ErrInvalidConnection):
		return badRequest("Invalid connection: expected sms or email")
	case errors.Is(err, ErrInvalidIdentifier):
		return badRequest(descInvalidIdentifier)
	case errors.Is(err, ErrCountryNotAllowed):
		return badRequest("SMS to this country is not supported")
	case errors.Is(err, ErrNoSender):
		return badRequest("Connection not supported")
	case errors.Is(err, ErrMissingToken):
		return badRequest(descMissingToken)
	case errors.Is(err, ErrMissingCode):
		return badRequest("Missing code")
	case errors.Is(err, ErrRepeatedParameter):
		return badRequest("Parameter sent more than once: " + param)
	case errors.Is(err, ErrInvalidParameter):
		return badRequest("Invalid parameter: " + param)
	case errors.Is(err, ErrSignInNotFound):
		return errorInfo{http.StatusBadRequest, "Invalid or expired passwordlessToken", "invalid_grant"}

	case errors.Is(err, ErrUnknownClient):
		return errorInfo{http.StatusNotFound, descUnknownClient, "invalid_client"}
	case errors.Is(err, ErrClientMismatch):
		return errorInfo{http.StatusNotFound, descClientMismatch, "unauthorized_client"}
	case errors.Is(err, ErrUserNotAdmin):
		return errorInfo{http.StatusUnauthorized, descUserNotAdmin, "access_denied"}
	case errors.Is(err, ErrClientNotAdmin):
		return errorInfo{http.StatusUnauthorized, descClientNotAdmin, "unauthorized_client"}
	case errors.Is(err, ErrEndpointNotAllowed):
		return errorInfo{http.StatusForbidden, fmt.Sprintf(descEndpointNotAllowed, product), "unauthorized_client"}
	case errors.Is(err, ErrIPNotAllowed):
		return errorInfo{http.StatusForbidden, descIPNotAllowed, "access_denied"}
	case errors.Is(err, ErrTokenNotAllowed):
		return errorInfo{http.StatusForbidden, descTokenNotAllowed, "insufficient_scope"}
	case errors.Is(err, ErrInvalidAccessToken):
		return errorInfo{http.StatusUnauthorized, "Invalid or expired access token", "invalid_token"}
	case errors.Is(err, ErrInvalidClientCredentials):
		return errorInfo{http.StatusUnauthorized, "Invalid client credentials", "invalid_client"}
	case errors.Is(err, ErrMissingClient):
		return errorInfo{http.StatusUnauthorized, "Missing client credentials", "invalid_client"}

	case errors.Is(err, ErrRateLimited):
		return errorInfo{StatusRateLimited, descRateLimited, "too_many_requests"}
	case errors.Is(err, ErrResendLimited):
		return errorInfo{http.StatusTooManyRequests, descResendLimited, "too_many_requests"}
	case errors.Is(err, ErrSendFailed):
		return errorInfo{http.StatusBadGateway, "The message could not be sent", "temporarily_unavailable"}
	case errors.Is(err, ErrLimiterUnavailable), errors.Is(err, ErrStoreUnavailable), errors.Is(err, ErrClientsUnavailable):
		return errorInfo{http.StatusServiceUnavailable, "Service temporarily unavailable", "temporarily_unavailable"}
	}
	return errorInfo{http.StatusInternalServerError, "Internal error", "server_error"}
}
