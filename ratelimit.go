package passwordless

import (
	"context"
	"time"
)

// Limit is a rate-limit budget: at most Quota events at once, refilled
// evenly over Window, so a drained budget regains one event every
// Window/Quota and is whole again after Window.
type Limit struct {
	// Quota is the number of events the budget holds when full.
	Quota int
	// Window is the time the budget takes to refill from empty to full.
	Window time.Duration
}

// Enabled reports whether the limit restricts anything. A Limit with a
// zero or negative Quota or Window is disabled.
func (l Limit) Enabled() bool {
	return l.Quota > 0 && l.Window > 0
}

// Decision is a rate limiter's verdict for one key.
type Decision struct {
	// Allowed reports whether the event was admitted (for Take) or would be
	// admitted (for Peek).
	Allowed bool
	// Limit is the quota of the budget, the same as Limit.Quota.
	Limit int
	// Remaining is the number of events the budget admits right now, after
	// this decision.
	Remaining int
	// Reset is the time until the budget is full again.
	Reset time.Duration
	// RetryAfter is the time until the next event will be admitted. It is
	// zero when Remaining is above zero.
	RetryAfter time.Duration
}

// RateLimiter keeps rate-limit budgets by key. The service builds keys from
// a policy name and a value (an IP address, a client ID, a keyed hash of a
// destination), so one limiter serves every policy.
//
// Implementations must be safe for concurrent use, and Take must check and
// consume in one atomic step: two concurrent calls never both take the last
// event of a budget. An error means the limiter could not decide (its
// backend is down, say); the service then rejects the request.
type RateLimiter interface {
	// Take consumes one event from the key's budget if the budget has one
	// left and reports the result. A refused Take consumes nothing.
	Take(ctx context.Context, key string, limit Limit) (Decision, error)

	// Peek reports what Take would decide, without consuming anything.
	Peek(ctx context.Context, key string, limit Limit) (Decision, error)

	// Refund returns one event to the key's budget, undoing an earlier Take
	// whose event turned out not to count. The budget never grows past
	// its quota.
	Refund(ctx context.Context, key string, limit Limit) error
}
