package passwordless

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Limits are the rate-limit policies the service applies. A zero Limit
// means the default named on its field; a Limit with a negative Quota
// turns the policy off.
//
// Each endpoint has its own budgets per client IP address and per API
// client, so that verify traffic cannot use up the start budget. The
// destination budgets key on the canonical email address or E.164 number,
// so formatting variants share one budget, and they span all sign-ins to
// the destination.
type Limits struct {
	// StartPerIP limits starts per client IP. Default: 30 per 10 minutes.
	StartPerIP Limit
	// ResendPerIP limits resends per client IP. Default: 30 per 10 minutes.
	ResendPerIP Limit
	// VerifyPerIP limits verifies per client IP. Default: 60 per 10
	// minutes.
	VerifyPerIP Limit

	// StartPerClient limits starts per API client. Default: 10000 per
	// hour.
	StartPerClient Limit
	// ResendPerClient limits resends per API client. Default: 10000 per
	// hour.
	ResendPerClient Limit
	// VerifyPerClient limits verifies per API client. Default: 20000 per
	// hour.
	VerifyPerClient Limit

	// StartPerDestination limits starts per email address or phone number.
	// Default: 5 per 15 minutes.
	StartPerDestination Limit
	// SendsPerDestination is the long-window quota of messages, first
	// codes and resends alike, per email address or phone number. Like
	// FailuresPerDestination it counts in a sliding window, so never more
	// than Quota messages go to one destination in any span of Window.
	// Default: 10 per 24 hours.
	SendsPerDestination Limit
	// FailuresPerDestination limits failed checks per email address or
	// phone number across all its sign-ins, counted in a sliding window:
	// never more than Quota in any span of Window, unlike the evenly
	// refilled budgets. When it is spent, verify fails and start is
	// refused for the destination until the oldest failure is Window old.
	// Each failure takes up to Quota limiter calls to record. Default: 10
	// per 24 hours.
	FailuresPerDestination Limit
	// SMSPerCountry limits SMS sends per country of the phone number,
	// which caps the cost of SMS pumping to one country. Default: 1000
	// per hour.
	SMSPerCountry Limit
}

// DefaultLimits returns the limits that zero fields of Limits stand for.
func DefaultLimits() Limits {
	return Limits{
		StartPerIP:             Limit{Quota: 30, Window: 10 * time.Minute},
		ResendPerIP:            Limit{Quota: 30, Window: 10 * time.Minute},
		VerifyPerIP:            Limit{Quota: 60, Window: 10 * time.Minute},
		StartPerClient:         Limit{Quota: 10000, Window: time.Hour},
		ResendPerClient:        Limit{Quota: 10000, Window: time.Hour},
		VerifyPerClient:        Limit{Quota: 20000, Window: time.Hour},
		StartPerDestination:    Limit{Quota: 5, Window: 15 * time.Minute},
		SendsPerDestination:    Limit{Quota: 10, Window: 24 * time.Hour},
		FailuresPerDestination: Limit{Quota: 10, Window: 24 * time.Hour},
		SMSPerCountry:          Limit{Quota: 1000, Window: time.Hour},
	}
}

// withDefaults fills zero limits with the defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *Limit, def Limit) {
		if *v == (Limit{}) {
			*v = def
		}
	}
	fill(&l.StartPerIP, d.StartPerIP)
	fill(&l.ResendPerIP, d.ResendPerIP)
	fill(&l.VerifyPerIP, d.VerifyPerIP)
	fill(&l.StartPerClient, d.StartPerClient)
	fill(&l.ResendPerClient, d.ResendPerClient)
	fill(&l.VerifyPerClient, d.VerifyPerClient)
	fill(&l.StartPerDestination, d.StartPerDestination)
	fill(&l.SendsPerDestination, d.SendsPerDestination)
	fill(&l.FailuresPerDestination, d.FailuresPerDestination)
	fill(&l.SMSPerCountry, d.SMSPerCountry)
	return l
}

// RateStatus is the state of one rate-limit budget after a request.
type RateStatus struct {
	// Policy names the budget for logs, such as "start-ip". It is not sent
	// to clients, so that they cannot tell which budget fired.
	Policy string
	// Limit is the budget's quota and window.
	Limit Limit
	Decision
}

// tighter reports whether s leaves less room than other: fewer remaining
// events, or as few and a later reset. A status without a policy is the
// loosest.
func (s RateStatus) tighter(other RateStatus) bool {
	if other.Policy == "" {
		return s.Policy != ""
	}
	if s.Remaining != other.Remaining {
		return s.Remaining < other.Remaining
	}
	return s.Reset > other.Reset
}

// policy is one budget applied to one request.
type policy struct {
	name  string
	key   string
	limit Limit
}

// rateTracker applies policies for one request and remembers the state of
// each budget it used, so that it can report the tightest.
type rateTracker struct {
	svc *Service
	// used holds the budgets taken and not refunded.
	used []RateStatus
	// refused is the budget that refused the request, if one did.
	refused RateStatus
}

// take consumes one event of each enabled policy, in order. If one refuses,
// the events already taken in this call are refunded and a
// *RateLimitError is returned, so a refused request spends nothing of the
// group.
func (t *rateTracker) take(ctx context.Context, policies ...policy) error {
	var taken []policy
	for _, p := range policies {
		if !p.limit.Enabled() || p.key == "" {
			continue
		}
		d, err := t.svc.limiter.Take(ctx, p.key, p.limit)
		if err != nil {
			t.refund(ctx, taken...)
			return t.svc.limiterFailed(err)
		}
		status := RateStatus{Policy: p.name, Limit: p.limit, Decision: d}
		if !d.Allowed {
			t.refund(ctx, taken...)
			t.refused = status
			return &RateLimitError{Status: status}
		}
		taken = append(taken, p)
		t.used = append(t.used, status)
	}
	return nil
}

// refund gives back one event of each policy and drops its status, because
// the event no longer counts. Refund errors are logged and otherwise
// ignored: a lost refund only makes a budget stricter.
func (t *rateTracker) refund(ctx context.Context, policies ...policy) {
	for _, p := range policies {
		if !p.limit.Enabled() || p.key == "" {
			continue
		}
		if err := t.svc.limiter.Refund(ctx, p.key, p.limit); err != nil {
			t.svc.limiterFailed(err)
		}
		t.used = slices.DeleteFunc(t.used, func(s RateStatus) bool { return s.Policy == p.name })
	}
}

// status returns the budget that refused the request, or else the
// tightest one it used.
func (t *rateTracker) status() RateStatus {
	if t.refused.Policy != "" {
		return t.refused
	}
	var tightest RateStatus
	for _, s := range t.used {
		if s.tighter(tightest) {
			tightest = s
		}
	}
	return tightest
}

// windowBudget is a budget counted in a sliding window: at most
// limit.Quota events in any span of limit.Window, however they are paced.
// A budget that refills evenly would let a patient caller add an event
// every Window/Quota on top of the first Quota. The budget is kept as Quota
// slots, each a one-event limit of one Window in the RateLimiter, and an
// event occupies a free slot until its window passes. Recording an event
// takes up to Quota limiter calls.
type windowBudget struct {
	name  string
	key   string
	limit Limit
}

func (b windowBudget) slot(i int) policy {
	return policy{
		name:  b.name,
		key:   b.key + ":" + strconv.Itoa(i),
		limit: Limit{Quota: 1, Window: b.limit.Window},
	}
}

// reserveSlot occupies a free slot of the budget and returns it, so that an
// event that does not count, such as a check that succeeds, can refund it. It returns a *RateLimitError when
// every slot holds a failure younger than the window. A disabled budget
// returns the zero policy, which refund ignores.
func (t *rateTracker) reserveSlot(ctx context.Context, b windowBudget) (policy, error) {
	if !b.limit.Enabled() {
		return policy{}, nil
	}
	var waits []time.Duration
	for i := range b.limit.Quota {
		slot := b.slot(i)
		d, err := t.svc.limiter.Take(ctx, slot.key, slot.limit)
		if err != nil {
			return policy{}, t.svc.limiterFailed(err)
		}
		if d.Allowed {
			return slot, nil
		}
		waits = append(waits, d.RetryAfter)
	}
	return policy{}, t.refuseSlots(b, waits)
}

// checkSlots returns a *RateLimitError if every slot of the budget is
// occupied, without occupying one.
func (t *rateTracker) checkSlots(ctx context.Context, b windowBudget) error {
	if !b.limit.Enabled() {
		return nil
	}
	var waits []time.Duration
	for i := range b.limit.Quota {
		slot := b.slot(i)
		d, err := t.svc.limiter.Peek(ctx, slot.key, slot.limit)
		if err != nil {
			return t.svc.limiterFailed(err)
		}
		if d.Allowed {
			return nil
		}
		waits = append(waits, d.RetryAfter)
	}
	return t.refuseSlots(b, waits)
}

// refuseSlots records the status of a spent window budget, whose slots free
// up after waits, and returns its error.
func (t *rateTracker) refuseSlots(b windowBudget, waits []time.Duration) error {
	status := RateStatus{
		Policy: b.name,
		Limit:  b.limit,
		Decision: Decision{
			Limit:      b.limit.Quota,
			Reset:      slices.Max(waits),
			RetryAfter: slices.Min(waits),
		},
	}
	t.refused = status
	return &RateLimitError{Status: status}
}

// ipPolicy returns a per-IP policy; an invalid address disables it. An
// IPv6 address counts as its /64 network, because one host commonly holds
// a whole /64 and could otherwise use a fresh address per request.
func ipPolicy(name string, ip netip.Addr, limit Limit) policy {
	if !ip.IsValid() {
		return policy{}
	}
	key := ip.String()
	if ip.Is6() {
		key = netip.PrefixFrom(ip, 64).Masked().String()
	}
	return policy{name: name, key: name + ":" + key, limit: limit}
}

func clientPolicy(name, clientID string, limit Limit) policy {
	return policy{name: name, key: name + ":" + clientID, limit: limit}
}

// destinationPolicy keys a budget on a keyed hash of the destination, so
// that limiter backends never hold email addresses or phone numbers.
func (s *Service) destinationPolicy(name, canonical string, limit Limit) policy {
	mac := hmac.New(sha256.New, s.limiterKey)
	mac.Write([]byte(canonical))
	sum := mac.Sum(nil)
	return policy{name: name, key: name + ":" + base64.RawURLEncoding.EncodeToString(sum[:16]), limit: limit}
}
