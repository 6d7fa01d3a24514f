// Package passwordless signs users in with one-time codes sent by SMS or
// email. A Service starts a sign-in, which sends a code and returns a
// token, resends the code and verifies it. A Handler serves the Service
// over HTTP with the wire contract of the Schibsted account passwordless
// API.
//
// The Service works behind small interfaces: a Store for sign-ins, a
// Sender per connection, a ClientAuthority that decides which API client
// calls and a RateLimiter. Each has an in-memory implementation in this
// package, used by default.
//
// Codes come from crypto/rand, are stored only as keyed hashes (HMAC-SHA-256
// with the configured secret), are compared in constant time, expire, work
// once and accept a limited number of checks.
package passwordless

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/language"
)

// Config configures a Service. Zero values mean the defaults named on each
// field, so the zero Config gives a working development setup: in-memory
// store, limiter and clients, and codes printed to standard output.
type Config struct {
	// Secret keys the HMAC of stored codes. It must be at least 32 bytes
	// of random data and the same in every instance that shares a Store.
	// Default: a random secret per Service, so codes do not survive a
	// restart; New logs a warning.
	Secret []byte
	// PreviousSecrets are older secrets still accepted when verifying, so
	// the secret can be rotated without failing sign-ins in flight. The
	// last one also keys the destination rate limits, which therefore
	// start afresh only when it is removed.
	PreviousSecrets [][]byte

	// Store keeps sign-ins. Default: a MemoryStore.
	Store Store
	// Clients decides which API client a request acts for. Default: a
	// ClientRegistry with one public client, "default", that may call every
	// endpoint and serves requests without credentials; New logs a
	// warning.
	Clients ClientAuthority
	// SMSSender delivers SMS. EmailSender delivers email. A connection
	// without a sender is rejected with ErrNoSender. Default, only when
	// both are nil: a PrintSender on standard output for both; New logs a
	// warning.
	SMSSender   Sender
	EmailSender Sender
	// Limiter keeps the rate-limit budgets. Default: a MemoryLimiter.
	Limiter RateLimiter
	// Limits are the rate-limit policies; see Limits for the defaults.
	Limits Limits
	// AllowedSMSRegions lists the ISO 3166 region codes, such as "SE" and
	// "NO", whose phone numbers may receive SMS. Empty allows every region.
	AllowedSMSRegions []string
	// PhoneRegion is the region of phone numbers written without a country
	// code, such as "NO". Default: none, so numbers must start with + or
	// 00.
	PhoneRegion string

	// CodeLength is the number of digits in a code, 6 to 12. Default: 6.
	CodeLength int
	// CodeTTL is how long a code is accepted after it is sent. Default:
	// 10 minutes. New logs a warning above 10 minutes, the most that NIST
	// SP 800-63B allows for out-of-band codes.
	CodeTTL time.Duration
	// SignInTTL is how long a sign-in can be resent after it starts.
	// Default: 1 hour. It is never shorter than CodeTTL.
	SignInTTL time.Duration
	// MaxAttempts is the number of failed checks a sign-in allows before no
	// code is accepted for it any more. Default: 5.
	MaxAttempts int
	// ResendInterval is the least time between two sends for one sign-in.
	// Default: 30 seconds.
	ResendInterval time.Duration
	// MaxResends is the number of resends a sign-in allows. Default: 3.
	MaxResends int

	// DefaultLocale is the message language when the request's locale is
	// missing or matches no template. Default: English.
	DefaultLocale language.Tag
	// Templates add languages or replace built-in texts; a field left
	// empty keeps the built-in text. See BuiltinTemplates.
	Templates map[language.Tag]MessageTemplate
	// ProductName is shown to users in messages. Default: none, and the
	// texts read naturally without it.
	ProductName string

	// Logger receives warnings and errors. It never receives codes,
	// secrets or full email addresses and phone numbers. Default:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Service runs passwordless sign-ins. It is safe for concurrent use.
type Service struct {
	secrets    [][]byte
	limiterKey []byte

	store   Store
	clients ClientAuthority
	senders map[Connection]Sender
	limiter RateLimiter
	limits  Limits
	regions []string
	region  string

	codeLength     int
	codeTTL        time.Duration
	signInTTL      time.Duration
	maxAttempts    int
	resendInterval time.Duration
	maxResends     int

	catalog *catalog
	logger  *slog.Logger
	now     func() time.Time
	random  io.Reader

	limiterErrors errorThrottle
}

// minSecretLength is the shortest accepted secret: 256 bits, the HMAC-SHA-256
// output size.
const minSecretLength = 32

// New returns a Service for cfg, or an error naming the invalid setting.
func New(cfg Config) (*Service, error) {
	s := &Service{
		store:          cfg.Store,
		clients:        cfg.Clients,
		limiter:        cfg.Limiter,
		limits:         cfg.Limits.withDefaults(),
		region:         strings.ToUpper(cfg.PhoneRegion),
		codeLength:     orDefault(cfg.CodeLength, defaultCodeLength),
		codeTTL:        orDefault(cfg.CodeTTL, 10*time.Minute),
		signInTTL:      orDefault(cfg.SignInTTL, time.Hour),
		maxAttempts:    orDefault(cfg.MaxAttempts, 5),
		resendInterval: orDefault(cfg.ResendInterval, 30*time.Second),
		maxResends:     orDefault(cfg.MaxResends, 3),
		logger:         cfg.Logger,
		now:            cfg.Now,
		random:         rand.Reader,
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.limiterErrors.interval = time.Minute

	if err := s.checkSettings(cfg); err != nil {
		return nil, err
	}
	if err := s.setSecrets(cfg); err != nil {
		return nil, err
	}
	if err := s.setCollaborators(cfg); err != nil {
		return nil, err
	}

	defaultTag := cfg.DefaultLocale
	if defaultTag == (language.Tag{}) {
		defaultTag = language.English
	}
	if strings.ContainsAny(cfg.ProductName, "\r\n") {
		return nil, errors.New("passwordless: ProductName must not contain line breaks")
	}
	c, err := newCatalog(cfg.Templates, defaultTag, cfg.ProductName)
	if err != nil {
		return nil, err
	}
	s.catalog = c
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// checkSettings validates the numeric settings after defaults are applied.
func (s *Service) checkSettings(cfg Config) error {
	switch {
	case s.codeLength < minCodeLength || s.codeLength > maxCodeLength:
		return fmt.Errorf("passwordless: CodeLength %d is out of range, expected 6 to 12", s.codeLength)
	case s.codeTTL < 0:
		return fmt.Errorf("passwordless: CodeTTL %s is negative", s.codeTTL)
	case s.signInTTL < 0:
		return fmt.Errorf("passwordless: SignInTTL %s is negative", s.signInTTL)
	case s.maxAttempts < 1:
		return fmt.Errorf("passwordless: MaxAttempts %d is out of range, expected at least 1", s.maxAttempts)
	case s.maxAttempts > 100:
		return fmt.Errorf("passwordless: MaxAttempts %d is above 100, the most NIST SP 800-63B allows", s.maxAttempts)
	case s.resendInterval < 0:
		return fmt.Errorf("passwordless: ResendInterval %s is negative", s.resendInterval)
	case s.maxResends < 0:
		return fmt.Errorf("passwordless: MaxResends %d is negative", s.maxResends)
	}
	if err := s.checkLimits(); err != nil {
		return err
	}
	if s.codeTTL > 10*time.Minute {
		s.logger.Warn("passwordless: CodeTTL is above 10 minutes, the most NIST SP 800-63B allows for out-of-band codes", "code_ttl", s.codeTTL)
	}
	if s.signInTTL < s.codeTTL {
		s.signInTTL = s.codeTTL
	}

	supported := phonenumbers.GetSupportedRegions()
	for _, r := range cfg.AllowedSMSRegions {
		r = strings.ToUpper(strings.TrimSpace(r))
		if !supported[r] {
			return fmt.Errorf("passwordless: AllowedSMSRegions entry %q is not a supported ISO 3166 region code such as SE", r)
		}
		s.regions = append(s.regions, r)
	}
	if s.region != "" && !supported[s.region] {
		return fmt.Errorf("passwordless: PhoneRegion %q is not a supported ISO 3166 region code such as SE", cfg.PhoneRegion)
	}
	return nil
}

// checkLimits rejects a Limit with only one of Quota and Window set, which
// would otherwise turn its policy off unnoticed, and one whose window is too
// short to divide among its quota. It warns about destination budgets that
// are turned off.
func (s *Service) checkLimits() error {
	l := &s.limits
	named := []struct {
		name        string
		limit       Limit
		destination bool
	}{
		{"StartPerIP", l.StartPerIP, false},
		{"ResendPerIP", l.ResendPerIP, false},
		{"VerifyPerIP", l.VerifyPerIP, false},
		{"StartPerClient", l.StartPerClient, false},
		{"ResendPerClient", l.ResendPerClient, false},
		{"VerifyPerClient", l.VerifyPerClient, false},
		{"StartPerDestination", l.StartPerDestination, true},
		{"SendsPerDestination", l.SendsPerDestination, true},
		{"FailuresPerDestination", l.FailuresPerDestination, true},
		{"SMSPerCountry", l.SMSPerCountry, true},
	}
	for _, n := range named {
		q, w := n.limit.Quota, n.limit.Window
		switch {
		case q > 0 && w <= 0:
			return fmt.Errorf("passwordless: Limits.%s has Quota %d but Window %s, expected a positive Window", n.name, q, w)
		case q == 0 && w != 0:
			return fmt.Errorf("passwordless: Limits.%s has Window %s but no Quota; set a Quota, or -1 to turn the policy off", n.name, w)
		case q > 0 && w < time.Duration(q):
			return fmt.Errorf("passwordless: Limits.%s Window %s is shorter than one nanosecond per event of Quota %d", n.name, w, q)
		}
		if n.destination && !n.limit.Enabled() {
			s.logger.Warn("passwordless: a destination rate limit is turned off", "limit", n.name)
		}
	}
	return nil
}

// setSecrets checks the HMAC secrets, or makes a random one with a warning.
func (s *Service) setSecrets(cfg Config) error {
	secret := cfg.Secret
	if len(secret) == 0 {
		secret = make([]byte, minSecretLength)
		if _, err := io.ReadFull(s.random, secret); err != nil {
			return fmt.Errorf("passwordless: making a random secret: %w", err)
		}
		s.logger.Warn("passwordless: no Secret configured, using a random one: codes stop working on restart and cannot be shared between instances; set Config.Secret in production")
	}
	for i, key := range append([][]byte{secret}, cfg.PreviousSecrets...) {
		if len(key) < minSecretLength {
			name := "Secret"
			if i > 0 {
				name = fmt.Sprintf("PreviousSecrets[%d]", i-1)
			}
			return fmt.Errorf("passwordless: %s is %d bytes, expected at least %d random bytes", name, len(key), minSecretLength)
		}
		s.secrets = append(s.secrets, slices.Clone(key))
	}

	// The oldest secret keys the destination budgets, so that a rotation
	// does not reset them while the old secret is still listed.
	mac := hmac.New(sha256.New, s.secrets[len(s.secrets)-1])
	mac.Write([]byte("passwordless rate-limit keys"))
	s.limiterKey = mac.Sum(nil)
	return nil
}

// setCollaborators fills in the in-memory defaults and warns about those
// unfit for production.
func (s *Service) setCollaborators(cfg Config) error {
	if s.store == nil {
		s.store = NewMemoryStore(s.now)
	}
	if s.limiter == nil {
		s.limiter = NewMemoryLimiter(MemoryLimiterConfig{Now: s.now})
	}
	if s.clients == nil {
		registry := &ClientRegistry{}
		registry.AddClient(Client{ID: "default", Endpoints: []Endpoint{AllEndpoints}})
		registry.SetDefaultClient("default")
		s.clients = registry
		s.logger.Warn("passwordless: no Clients configured, so every caller acts as the public client \"default\"; set Config.Clients in production")
	}

	s.senders = map[Connection]Sender{}
	if cfg.SMSSender != nil {
		s.senders[SMS] = cfg.SMSSender
	}
	if cfg.EmailSender != nil {
		s.senders[Email] = cfg.EmailSender
	}
	if len(s.senders) == 0 {
		printer := &PrintSender{}
		s.senders[SMS] = printer
		s.senders[Email] = printer
	}
	var printing []Connection
	for _, conn := range []Connection{SMS, Email} {
		if _, ok := s.senders[conn].(*PrintSender); ok {
			printing = append(printing, conn)
		}
	}
	if len(printing) > 0 {
		s.logger.Warn("passwordless: the PrintSender writes one-time codes to its output instead of delivering them; do not use it in production", "connections", printing)
	}
	return nil
}

// authorize resolves the caller with the ClientAuthority. It passes client errors
// through and reports any other failure as ErrClientsUnavailable.
func (s *Service) authorize(ctx context.Context, endpoint Endpoint, creds Credentials, ip netip.Addr) (Caller, error) {
	caller, err := s.clients.Authorize(ctx, AuthRequest{Endpoint: endpoint, Credentials: creds, IP: ip})
	if err != nil {
		if isClientError(err) {
			return Caller{}, err
		}
		s.logger.Error("passwordless: client authority failed", "endpoint", endpoint, "error", err)
		return Caller{}, wrapErr(ErrClientsUnavailable, err)
	}
	return caller, nil
}

// cleanupTimeout bounds the store calls that undo a failed send.
const cleanupTimeout = 5 * time.Second

// cleanupContext returns a context for undoing a failed step. It keeps the
// values of ctx but not its cancellation, because the step often failed
// exactly because ctx was cancelled, and the undo must still happen.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// storeFailed logs a store error and returns the error to report.
func (s *Service) storeFailed(op, token string, err error) error {
	s.logger.Error("passwordless: store failed", "operation", op, "token", token, "error", err)
	return wrapErr(ErrStoreUnavailable, err)
}

// limiterFailed logs a limiter error at most once a minute and returns the
// error to report, so that a down backend fails requests closed without
// flooding the log.
func (s *Service) limiterFailed(err error) error {
	if suppressed, ok := s.limiterErrors.allow(s.now()); ok {
		s.logger.Error("passwordless: rate limiter failed, rejecting requests", "error", err, "suppressed_since_last", suppressed)
	}
	return wrapErr(ErrLimiterUnavailable, err)
}

// errorThrottle lets one log line through per interval and counts the rest.
type errorThrottle struct {
	interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many lines were suppressed
// since the last one logged.
func (t *errorThrottle) allow(now time.Time) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < t.interval {
		t.suppressed++
		return 0, false
	}
	suppressed := t.suppressed
	t.last, t.suppressed = now, 0
	return suppressed, true
}
