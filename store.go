package passwordless

import (
	"context"
	"time"
)

// SignIn is one passwordless sign-in as a Store keeps it: who it is for, the
// keyed hash of the code sent last, and the counters that limit it. It never
// holds the code itself.
type SignIn struct {
	// Token is the passwordless token, a random UUID.
	Token string
	// ClientID is the API client that started the sign-in.
	ClientID string
	// Connection is the channel of the code.
	Connection Connection
	// Recipient is the address the code was sent to: an email address as
	// the user typed it (domain lowercased) or an E.164 phone number.
	Recipient string
	// Identifier is the canonical form of Recipient: the case-folded email
	// address or the E.164 phone number.
	Identifier string
	// Locale is the BCP 47 tag of the message language.
	Locale string
	// CodeHash is the HMAC-SHA-256 of the current code, keyed with the
	// service's secret and bound to the token.
	CodeHash []byte
	// CodeExpiresAt is when the current code stops being accepted.
	CodeExpiresAt time.Time
	// SentAt is when the current code was sent.
	SentAt time.Time
	// Sends counts the codes sent for this sign-in, the first one included.
	Sends int
	// Attempts counts the checks made against this sign-in, right or wrong.
	Attempts int
	// CreatedAt is when the sign-in was started.
	CreatedAt time.Time
	// ExpiresAt is when the store may forget the sign-in. It is not before
	// CodeExpiresAt.
	ExpiresAt time.Time
}

// CodeState is the part of a SignIn that a resend replaces.
type CodeState struct {
	CodeHash      []byte
	CodeExpiresAt time.Time
	SentAt        time.Time
	Sends         int
}

// Store keeps sign-ins. The service needs each method to be atomic on its
// own; it never needs a transaction across methods. Every method that
// finds no sign-in for the token, or finds one whose ExpiresAt has passed,
// returns ErrNotFound. Any other error is a system error that the service
// reports as ErrStoreUnavailable.
//
// Implementations must be safe for concurrent use by many goroutines and,
// for shared backends, by many processes. The conformance tests in package
// storetest check these contracts, the concurrent ones included.
type Store interface {
	// Create stores a new sign-in. It returns ErrDuplicateToken if a sign-in
	// with the same token exists.
	Create(ctx context.Context, s SignIn) error

	// Get returns the sign-in with the token.
	Get(ctx context.Context, token string) (SignIn, error)

	// AddAttempt increments the sign-in's Attempts and returns the sign-in
	// as it is after the increment. Increment and read are one atomic step,
	// so of n concurrent calls exactly one returns each count.
	AddAttempt(ctx context.Context, token string) (SignIn, error)

	// SetCode replaces the sign-in's code state, only if its CodeHash still
	// equals prevHash, and returns the updated sign-in. It returns
	// ErrConflict if the hash differs, so of concurrent resends only one
	// wins and a restore never overwrites a newer code.
	SetCode(ctx context.Context, token string, prevHash []byte, next CodeState) (SignIn, error)

	// Consume deletes the sign-in, only if its CodeHash equals codeHash.
	// Of concurrent calls at most one returns nil; the others return
	// ErrNotFound, or ErrConflict if the code was replaced.
	Consume(ctx context.Context, token string, codeHash []byte) error

	// Delete removes the sign-in. Deleting a missing sign-in is not an
	// error.
	Delete(ctx context.Context, token string) error
}
