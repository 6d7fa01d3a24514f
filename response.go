package passwordless

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// container is the contract's response envelope.
type container struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	API     int             `json:"api"`
	Object  string          `json:"object"`
	Type    string          `json:"type"`
	Code    int             `json:"code"`
	Request requestStatus   `json:"request"`
	Meta    any             `json:"meta"`
	Error   *containerError `json:"error"`
	Data    any             `json:"data"`
	Debug   *debugInfo      `json:"debug,omitempty"`
}

type requestStatus struct {
	Reset     int64 `json:"reset"`
	Limit     int   `json:"limit"`
	Remaining int   `json:"remaining"`
}

type containerError struct {
	Code        int    `json:"code"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

type debugInfo struct {
	Route  string   `json:"route"`
	Params []string `json:"params"`
}

// flatError is the RFC 6749 section 5.2 error body.
type flatError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// tokenData is the PasswordlessToken object; its field name follows the
// style.
type tokenData struct {
	Token string
	style Style
}

func (t tokenData) MarshalJSON() ([]byte, error) {
	if t.style == FlatStyle {
		return json.Marshal(map[string]string{"passwordless_token": t.Token})
	}
	return json.Marshal(map[string]string{"passwordlessToken": t.Token})
}

// retryInfo is the machine-readable retry information in "meta".
type retryInfo struct {
	// AttemptsLeft is the number of checks the sign-in still accepts.
	AttemptsLeft int `json:"attemptsLeft"`
	// ResendAfter is the number of seconds until a resend is allowed, or
	// -1 when the sign-in cannot be resent.
	ResendAfter int64 `json:"resendAfter"`
}

func retryMeta(attemptsLeft int, resendAfter time.Duration) retryInfo {
	after := int64(-1)
	if resendAfter >= 0 {
		after = ceilSeconds(resendAfter)
	}
	return retryInfo{AttemptsLeft: attemptsLeft, ResendAfter: after}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// writeOutcome writes an endpoint's result.
func (h *Handler) writeOutcome(w http.ResponseWriter, r *http.Request, route string, res outcome) {
	if res.err == nil {
		h.write(w, r, route, http.StatusOK, res, nil)
		return
	}

	info := describeError(res.err, res.errParam, h.cfg.ProductName)
	if info.status == StatusRateLimited {
		info.status = h.cfg.RateLimitStatus
	}
	// The service logs its own backend and delivery failures, the limiter's
	// once per burst, so only errors it does not know are logged here.
	if info.status == http.StatusInternalServerError {
		h.cfg.Logger.Error("passwordless: request failed", "route", route, "status", info.status, "error", res.err)
	}
	h.writeError(w, r, route, res, info)
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, route string, res outcome, info errorInfo) {
	if info.status == http.StatusUnauthorized && info.oauthCode == "invalid_token" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if info.status == h.cfg.RateLimitStatus || info.status == http.StatusTooManyRequests {
		if retry, ok := retryAfter(res); ok {
			w.Header().Set("Retry-After", strconv.FormatInt(max(ceilSeconds(retry), 1), 10))
		}
	}
	h.write(w, r, route, info.status, res, &info)
}

// retryAfter returns the wait to send in Retry-After, and false when no
// retry can succeed, as for a sign-in with no resends left.
func retryAfter(res outcome) (time.Duration, bool) {
	var limited *ResendLimitError
	if errors.As(res.err, &limited) {
		return limited.RetryAfter, limited.RetryAfter >= 0
	}
	return res.rateLimit.RetryAfter, true
}

// write sends the body in the configured style with the common headers.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, route string, status int, res outcome, info *errorInfo) {
	header := w.Header()
	header.Set("Content-Type", "application/json; charset=utf-8")
	header.Set("Cache-Control", "no-store")
	header.Set("X-Content-Type-Options", "nosniff")
	setRateLimitHeaders(header, res.rateLimit)

	var body any
	if h.cfg.Style == FlatStyle {
		body = res.data
		if info != nil {
			desc := info.description
			if res.errParam != "" && info.status == http.StatusBadRequest {
				desc = fmt.Sprintf("%s (parameter %s)", desc, res.errParam)
			}
			body = flatError{Error: info.oauthCode, ErrorDescription: desc}
		}
	} else {
		body = h.container(r, route, status, res, info)
	}

	data, err := json.Marshal(body)
	if err != nil {
		h.cfg.Logger.Error("passwordless: encoding the response failed", "route", route, "error", err)
		status = http.StatusInternalServerError
		data = []byte(`{"error":"server_error","error_description":"Internal error"}`)
		if h.cfg.Style == ContainerStyle {
			data, _ = json.Marshal(h.container(r, route, status, outcome{}, &errorInfo{status, "Internal error", "server_error"}))
		}
	}
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

func (h *Handler) container(r *http.Request, route string, status int, res outcome, info *errorInfo) container {
	c := container{
		Name:    "SPP Container",
		Version: "0.2",
		API:     2,
		Object:  "Passwordless",
		Type:    "element",
		Code:    status,
		Request: requestStatus{
			Reset:     ceilSeconds(res.rateLimit.Reset),
			Limit:     res.rateLimit.Limit.Quota,
			Remaining: res.rateLimit.Remaining,
		},
		Meta: res.meta,
		Data: res.data,
	}
	if info != nil {
		c.Type = "error"
		c.Data = nil
		c.Error = &containerError{Code: status, Type: "ApiException", Description: info.description}
	}
	if h.cfg.Debug {
		c.Debug = &debugInfo{Route: route, Params: res.paramNames}
	}
	return c
}

// setRateLimitHeaders writes the IETF RateLimit and RateLimit-Policy
// fields (draft-ietf-httpapi-ratelimit-headers) for the tightest budget.
// The policy is named "default" for every budget, so that clients cannot
// tell which one applied, and t is the time until the budget regains an
// event.
func setRateLimitHeaders(header http.Header, s RateStatus) {
	if s.Policy == "" {
		return
	}
	header.Set("RateLimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, s.Limit.Quota, ceilSeconds(s.Limit.Window)))
	header.Set("RateLimit", fmt.Sprintf(`"default";r=%d;t=%d`, s.Remaining, ceilSeconds(untilMoreQuota(s))))
}

// untilMoreQuota returns the time until the budget's remaining count grows:
// the wait of a refused request, or else the part of an emission interval
// left before the next event returns.
func untilMoreQuota(s RateStatus) time.Duration {
	if !s.Allowed {
		return s.RetryAfter
	}
	if s.Reset <= 0 || s.Limit.Quota <= 0 {
		return 0
	}
	interval := s.Limit.Window / time.Duration(s.Limit.Quota)
	if interval <= 0 {
		return 0
	}
	if part := s.Reset % interval; part > 0 {
		return part
	}
	return interval
}
