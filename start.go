package passwordless

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

// StartRequest is a request to start a sign-in.
type StartRequest struct {
	// Connection is SMS or Email. Other values are rejected with
	// ErrInvalidConnection.
	Connection Connection
	// PhoneNumber is the recipient for SMS; ignored for email.
	PhoneNumber string
	// Email is the recipient for email; ignored for SMS.
	Email string
	// Locale is the requested message language, such as "nb_NO" or "sv".
	Locale string
	// Credentials identify the API client.
	Credentials Credentials
	// ClientIP is the user's address, for allowlists and rate limits. The
	// zero Addr skips the per-IP limits.
	ClientIP netip.Addr
}

// StartResult is the outcome of a successful Start.
type StartResult struct {
	// Token is the passwordless token to pass to Resend and Verify.
	Token string
	// Locale is the language the message was written in.
	Locale language.Tag
	// RateLimit is the tightest rate-limit budget the request used. Start
	// sets it even when it returns an error.
	RateLimit RateStatus
}

// Start validates the request, sends a new one-time code and returns the
// sign-in's token. If the message cannot be sent, the sign-in is removed
// and the error matches ErrSendFailed.
func (s *Service) Start(ctx context.Context, req StartRequest) (StartResult, error) {
	rates := &rateTracker{svc: s}
	result, err := s.start(ctx, req, rates)
	result.RateLimit = rates.status()
	return result, err
}

func (s *Service) start(ctx context.Context, req StartRequest, rates *rateTracker) (StartResult, error) {
	caller, err := s.authorize(ctx, EndpointStart, req.Credentials, req.ClientIP)
	if err != nil {
		return StartResult{}, err
	}
	err = rates.take(ctx,
		ipPolicy("start-ip", req.ClientIP, s.limits.StartPerIP),
		clientPolicy("start-client", caller.ClientID, s.limits.StartPerClient))
	if err != nil {
		return StartResult{}, err
	}

	dest, err := s.parseDestination(req)
	if err != nil {
		return StartResult{}, err
	}
	sender, ok := s.senders[dest.connection]
	if !ok {
		return StartResult{}, &ParamError{Param: "connection", Err: ErrNoSender}
	}
	if dest.connection == SMS && len(s.regions) > 0 && !slices.Contains(s.regions, dest.region) {
		return StartResult{}, &ParamError{Param: "phoneNumber", Err: ErrCountryNotAllowed, Detail: "region " + dest.region}
	}

	if err := rates.checkSlots(ctx, s.failureBudget(dest.canonical)); err != nil {
		return StartResult{}, err
	}
	// The destination budgets are refunded if the sign-in cannot be
	// stored, because then nothing was sent. A failed send keeps them
	// spent: the provider may have delivered the message all the same,
	// and refunds there would let a caller send without limit by making
	// the sends look failed, for example by hanging up.
	startBudget := s.destinationPolicy("start-destination", dest.canonical, s.limits.StartPerDestination)
	if err := rates.take(ctx, startBudget); err != nil {
		return StartResult{}, err
	}
	sendBudgets, err := s.takeSendBudgets(ctx, rates, dest)
	if err != nil {
		rates.refund(ctx, startBudget)
		return StartResult{}, err
	}
	destPolicies := append([]policy{startBudget}, sendBudgets...)

	localeIndex := s.catalog.match(req.Locale)
	locale := s.catalog.tags[localeIndex]
	token, code, err := s.newTokenAndCode()
	if err != nil {
		rates.refund(ctx, destPolicies...)
		return StartResult{}, err
	}

	now := s.now()
	signIn := SignIn{
		Token:         token,
		ClientID:      caller.ClientID,
		Connection:    dest.connection,
		Recipient:     dest.address,
		Identifier:    dest.canonical,
		Locale:        locale.String(),
		CodeHash:      hashCode(s.secrets[0], token, code),
		CodeExpiresAt: now.Add(s.codeTTL),
		SentAt:        now,
		Sends:         1,
		CreatedAt:     now,
		ExpiresAt:     now.Add(s.signInTTL),
	}
	if err := s.store.Create(ctx, signIn); err != nil {
		rates.refund(ctx, destPolicies...)
		return StartResult{}, s.storeFailed("create", token, err)
	}

	if err := s.send(ctx, sender, signIn, localeIndex, code); err != nil {
		cleanup, cancel := cleanupContext(ctx)
		defer cancel()
		if delErr := s.store.Delete(cleanup, token); delErr != nil {
			s.logger.Error("passwordless: removing a sign-in after a failed send failed", "token", token, "error", delErr)
		}
		return StartResult{}, err
	}
	return StartResult{Token: token, Locale: locale}, nil
}

// parseDestination validates the identifier that the connection needs.
func (s *Service) parseDestination(req StartRequest) (destination, error) {
	conn, err := parseConnection(string(req.Connection))
	if err != nil {
		return destination{}, err
	}
	if conn == SMS {
		return parsePhone("phoneNumber", req.PhoneNumber, s.region)
	}
	return parseEmail("email", req.Email)
}

// takeSendBudgets spends the budgets of one message to dest: the SMS
// country budget and a slot of the destination's send quota. It returns
// them for a refund in case the message is not sent, and spends nothing
// when one of them refuses.
func (s *Service) takeSendBudgets(ctx context.Context, rates *rateTracker, dest destination) ([]policy, error) {
	var taken []policy
	if dest.connection == SMS {
		country := policy{name: "sms-country", key: "sms-country:" + dest.region, limit: s.limits.SMSPerCountry}
		if err := rates.take(ctx, country); err != nil {
			return nil, err
		}
		taken = append(taken, country)
	}

	slot, err := rates.reserveSlot(ctx, s.windowBudget("sends-destination", dest.canonical, s.limits.SendsPerDestination))
	if err != nil {
		rates.refund(ctx, taken...)
		return nil, err
	}
	return append(taken, slot), nil
}

// failureBudget is the destination's budget of failed checks.
func (s *Service) failureBudget(canonical string) windowBudget {
	return s.windowBudget("failures-destination", canonical, s.limits.FailuresPerDestination)
}

func (s *Service) windowBudget(name, canonical string, limit Limit) windowBudget {
	p := s.destinationPolicy(name, canonical, limit)
	return windowBudget{name: p.name, key: p.key, limit: p.limit}
}

func (s *Service) newTokenAndCode() (token, code string, err error) {
	id, err := uuid.NewRandomFromReader(s.random)
	if err != nil {
		return "", "", fmt.Errorf("passwordless: making a token: %w", err)
	}
	code, err = generateCode(s.random, s.codeLength)
	if err != nil {
		return "", "", err
	}
	return id.String(), code, nil
}
