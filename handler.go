package passwordless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
)

// Style is the shape of the handler's response bodies.
type Style int

const (
	// ContainerStyle wraps every response in the contract's "SPP Container"
	// object. It is the default.
	ContainerStyle Style = iota
	// FlatStyle responds with bare objects: the data on success and an
	// RFC 6749 error object ({"error", "error_description"}) on failure.
	FlatStyle
)

// HandlerConfig configures a Handler. Zero values mean the defaults named
// on each field.
type HandlerConfig struct {
	// Prefix is the path the endpoints are mounted under. Default:
	// "/api/2" in ContainerStyle and "" in FlatStyle. Give "/" for the
	// root in ContainerStyle.
	Prefix string
	// Style is the shape of response bodies. Default: ContainerStyle.
	Style Style
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed. Default: none, so the client IP is always the connection's
	// remote address.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes limits request bodies. Default: 64 KiB.
	MaxBodyBytes int64
	// RateLimitStatus is the status of rate-limited responses. Default: 420,
	// as the contract has it; 429 is the registered HTTP status.
	RateLimitStatus int
	// ProductName replaces "Schibsted account" in the 403 text that names
	// whom clients should contact.
	ProductName string
	// OnVerified runs after a successful verify, for example to find or
	// create the user and issue its session. Its result is the response's
	// data. An error makes the response a 500 and is logged, and the sign-in is
	// consumed by then, so the user must start again. Default: the
	// response's data is the Identity.
	OnVerified func(ctx context.Context, r *http.Request, id Identity) (any, error)
	// Debug adds the contract's debug object (route and parameter names,
	// never values) to container responses.
	Debug bool
	// Logger receives errors the handler cannot map to a documented
	// status. Default: slog.Default().
	Logger *slog.Logger
}

// Handler serves a Service over HTTP: POST {prefix}/passwordless/start,
// /resend and /verify, each also with a ".json" suffix. It is safe for
// concurrent use.
type Handler struct {
	svc    *Service
	cfg    HandlerConfig
	routes map[string]endpointFunc
}

type endpointFunc func(w http.ResponseWriter, r *http.Request, p params, creds Credentials, ip netip.Addr) outcome

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler for svc.
func NewHandler(svc *Service, cfg HandlerConfig) *Handler {
	if cfg.Prefix == "" && cfg.Style == ContainerStyle {
		cfg.Prefix = "/api/2"
	}
	cfg.Prefix = "/" + strings.Trim(cfg.Prefix, "/")
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.RateLimitStatus == 0 {
		cfg.RateLimitStatus = StatusRateLimited
	}
	if cfg.ProductName == "" {
		cfg.ProductName = "Schibsted account"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	h := &Handler{svc: svc, cfg: cfg}
	h.routes = map[string]endpointFunc{
		"passwordless/start":  h.start,
		"passwordless/resend": h.resend,
		"passwordless/verify": h.verify,
	}
	return h
}

// outcome is the result of an endpoint: data on success, or an error.
type outcome struct {
	data      any
	meta      any
	err       error
	errParam  string
	rateLimit RateStatus
	// paramNames lists the parameters the request sent, for the debug
	// object.
	paramNames []string
}

// ServeHTTP routes the request and writes the response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, suffix, ok := h.route(r.URL.Path)
	endpoint := h.routes[route]
	if !ok || endpoint == nil {
		h.writeError(w, r, route, outcome{}, errorInfo{http.StatusNotFound, "Not found", "invalid_request"})
		return
	}
	if suffix != "" && suffix != ".json" {
		h.writeError(w, r, route, outcome{}, errorInfo{http.StatusBadRequest, "Unsupported response format " + suffix + ", only .json is supported", "invalid_request"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.writeError(w, r, route, outcome{}, errorInfo{http.StatusMethodNotAllowed, "Method not allowed, use POST", "invalid_request"})
		return
	}
	if name := secretInQuery(r); name != "" {
		h.writeError(w, r, route, outcome{}, errorInfo{http.StatusBadRequest, "Parameter " + name + " must be sent in the request body, not the URL", "invalid_request"})
		return
	}

	p, err := readParams(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		h.writeError(w, r, route, outcome{}, h.describeReadError(err))
		return
	}
	creds, err := credentials(r, p)
	if err != nil {
		h.writeOutcome(w, r, route, outcome{err: err, errParam: paramOf(err, nil)})
		return
	}

	res := endpoint(w, r, p, creds, clientIP(r, h.cfg.TrustedProxies))
	res.paramNames = p.names()
	h.writeOutcome(w, r, route, res)
}

// route splits a request path into the endpoint below the prefix and the
// format suffix, dot included, so that a bare trailing dot is a suffix too.
func (h *Handler) route(path string) (route, suffix string, ok bool) {
	prefix := strings.TrimSuffix(h.cfg.Prefix, "/")
	if !strings.HasPrefix(path, prefix+"/") {
		return "", "", false
	}
	route = strings.TrimPrefix(path, prefix+"/")
	if dot := strings.LastIndexByte(route, '.'); dot >= 0 {
		route, suffix = route[:dot], route[dot:]
	}
	return route, suffix, true
}

// secretInQuery returns the name of a secret parameter found in the URL's
// query, where proxies and logs would keep it.
func secretInQuery(r *http.Request) string {
	query := r.URL.Query()
	for _, name := range []string{"code", "client_secret", "clientSecret", "passwordlessToken", "passwordless_token"} {
		if query.Has(name) {
			return name
		}
	}
	return ""
}

func (h *Handler) describeReadError(err error) errorInfo {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errorInfo{http.StatusRequestEntityTooLarge, "Request body too large", "invalid_request"}
	case errors.Is(err, errUnsupportedMediaType):
		return errorInfo{http.StatusUnsupportedMediaType, "Unsupported content type, use application/x-www-form-urlencoded, multipart/form-data or application/json", "invalid_request"}
	}
	var pe *ParamError
	if errors.As(err, &pe) {
		return describeError(err, pe.Param, h.cfg.ProductName)
	}
	return errorInfo{http.StatusBadRequest, "Could not read the request body", "invalid_request"}
}

// paramValues reads the named parameters in order, stopping at the first
// error, and returns the values and the spellings the client used.
func paramValues(p params, names ...string) (values []string, sentAs map[string]string, err error) {
	sentAs = make(map[string]string, len(names))
	for _, name := range names {
		v, as, err := p.get(name)
		if err != nil {
			return nil, sentAs, err
		}
		values = append(values, v)
		sentAs[name] = as
	}
	return values, sentAs, nil
}

// paramOf returns the client's spelling of the parameter an error is about.
func paramOf(err error, sentAs map[string]string) string {
	var pe *ParamError
	if !errors.As(err, &pe) {
		return ""
	}
	if as, ok := sentAs[pe.Param]; ok {
		return as
	}
	return pe.Param
}

func (h *Handler) start(_ http.ResponseWriter, r *http.Request, p params, creds Credentials, ip netip.Addr) outcome {
	v, sentAs, err := paramValues(p, "connection", "phoneNumber", "email", "locale")
	if err != nil {
		return outcome{err: err, errParam: paramOf(err, sentAs)}
	}

	res, err := h.svc.Start(r.Context(), StartRequest{
		Connection:  Connection(v[0]),
		PhoneNumber: v[1],
		Email:       v[2],
		Locale:      v[3],
		Credentials: creds,
		ClientIP:    ip,
	})
	if err != nil {
		return outcome{err: err, errParam: paramOf(err, sentAs), rateLimit: res.RateLimit}
	}
	return outcome{data: tokenData{Token: res.Token, style: h.cfg.Style}, rateLimit: res.RateLimit}
}

func (h *Handler) resend(_ http.ResponseWriter, r *http.Request, p params, creds Credentials, ip netip.Addr) outcome {
	v, sentAs, err := paramValues(p, "passwordlessToken")
	if err != nil {
		return outcome{err: err, errParam: paramOf(err, sentAs)}
	}

	res, err := h.svc.Resend(r.Context(), ResendRequest{Token: v[0], Credentials: creds, ClientIP: ip})
	if err != nil {
		out := outcome{err: err, errParam: paramOf(err, sentAs), rateLimit: res.RateLimit}
		var limited *ResendLimitError
		if errors.As(err, &limited) {
			out.meta = retryMeta(limited.AttemptsLeft, limited.RetryAfter)
		}
		return out
	}
	return outcome{
		data:      tokenData{Token: res.Token, style: h.cfg.Style},
		meta:      retryMeta(res.AttemptsLeft, res.NextResendAfter),
		rateLimit: res.RateLimit,
	}
}

func (h *Handler) verify(_ http.ResponseWriter, r *http.Request, p params, creds Credentials, ip netip.Addr) outcome {
	v, sentAs, err := paramValues(p, "passwordlessToken", "code", "identifier")
	if err != nil {
		return outcome{err: err, errParam: paramOf(err, sentAs)}
	}

	res, err := h.svc.Verify(r.Context(), VerifyRequest{
		Token:       v[0],
		Code:        v[1],
		Identifier:  v[2],
		Credentials: creds,
		ClientIP:    ip,
	})
	if err != nil {
		out := outcome{err: err, errParam: paramOf(err, sentAs), rateLimit: res.RateLimit}
		var failed *VerifyError
		if errors.As(err, &failed) {
			out.meta = retryMeta(failed.AttemptsLeft, failed.ResendAfter)
		}
		return out
	}

	var data any = res.Identity
	if h.cfg.OnVerified != nil {
		data, err = h.cfg.OnVerified(r.Context(), r, res.Identity)
		if err != nil {
			err = fmt.Errorf("passwordless: OnVerified hook for token %s of client %s: %w", res.Identity.Token, res.Identity.ClientID, err)
			return outcome{err: err, rateLimit: res.RateLimit}
		}
	}
	return outcome{data: data, rateLimit: res.RateLimit}
}
