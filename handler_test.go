package passwordless

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Paths of the endpoints under the default container-style prefix.
const (
	apiStart  = "/api/2/passwordless/start"
	apiResend = "/api/2/passwordless/resend"
	apiVerify = "/api/2/passwordless/verify"
)

const (
	formContentType   = "application/x-www-form-urlencoded"
	jsonContentType   = "application/json"
	multipartBoundary = "handler-test-boundary"

	// userRemoteAddr is the remote address of requests that set none.
	userRemoteAddr = "192.0.2.10:51000"
)

// Clients and access tokens that newHandlerEnv registers.
const (
	appClientID          = "app"          // public, the default client, administers managedClientID
	otherClientID        = "other"        // public, administered by the user "ada"
	managedClientID      = "managed"      // public
	confidentialClientID = "confidential" // authenticates with confidentialSecret
	verifyOnlyClientID   = "verify-only"  // granted only the verify endpoint
	officeClientID       = "office"       // allowed only from officeNetwork

	confidentialSecret = "s3cret-Value_42"

	adaUserToken    = "user-token-ada"    // user "ada", issued to appClientID
	bobUserToken    = "user-token-bob"    // user "bob", issued to appClientID
	appClientToken  = "client-token-app"  // client token of appClientID
	verifyOnlyToken = "verify-only-token" // client token of appClientID, granted only verify
)

var officeNetwork = netip.MustParsePrefix("203.0.113.0/24")

// handlerSecret is a fixed 32-byte Config.Secret.
var handlerSecret = []byte("handler-test-secret-of-32-bytes!")

var (
	uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	sixDigits   = regexp.MustCompile(`\b[0-9]{6}\b`)
)

// Descriptions that the wire contract documents.
const (
	descWantMissingConnection  = "Missing connection"
	descWantInvalidIdentifier  = "Invalid/empty phone or email"
	descWantUserNotAdmin       = "You don't have administration rights for this client."
	descWantClientNotAdmin     = "Your client doesn't have administration rights for this client."
	descWantEndpointNotAllowed = "Client is not authorized to access this API endpoint. Contact Schibsted account to request access."
	descWantIPNotAllowed       = "Requesting IP is not whitelisted"
	descWantTokenNotAllowed    = "Token is not authorized to access this endpoint"
	descWantUnknownClient      = "Unknown client ID"
	descWantClientMismatch     = "Client ID mismatch. The client making the request is no the owner of this resource, and does not have administrative privileges for it."
	descWantRateLimited        = "Request Ratelimit exceeded"
	descWantMissingToken       = "Missing passwordlessToken"
	descWantResendLimited      = "Too many attempts made to resend code"
)

// descWantVerifyFailed is the library's one description for every failed
// verification.
const descWantVerifyFailed = "Invalid or expired code"

// handlerEnv is a Handler over a Service with a fake clock, a registry of
// test clients and a recording sender for both connections.
type handlerEnv struct {
	clock   *fakeClock
	outbox  *outbox
	service *Service
	handler *Handler
}

// newHandlerEnv builds a handlerEnv. Each configure function may change the
// service and handler configuration before they are built.
func newHandlerEnv(t *testing.T, configure ...func(*Config, *HandlerConfig)) *handlerEnv {
	t.Helper()
	env := &handlerEnv{
		clock:  newFakeClock(),
		outbox: &outbox{},
	}
	logger := slog.New(slog.DiscardHandler)
	cfg := Config{
		Secret:      handlerSecret,
		Clients:     handlerClients(),
		SMSSender:   env.outbox,
		EmailSender: env.outbox,
		Logger:      logger,
		Now:         env.clock.Now,
	}
	handlerCfg := HandlerConfig{Logger: logger}
	for _, f := range configure {
		f(&cfg, &handlerCfg)
	}

	svc, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env.service = svc
	env.handler = NewHandler(svc, handlerCfg)
	return env
}

func handlerClients() *ClientRegistry {
	all := []Endpoint{AllEndpoints}
	r := &ClientRegistry{}
	r.AddClient(Client{ID: appClientID, Endpoints: all, Administers: []string{managedClientID}})
	r.AddClient(Client{ID: otherClientID, Endpoints: all, Admins: []string{"ada"}})
	r.AddClient(Client{ID: managedClientID, Endpoints: all})
	r.AddClient(Client{ID: confidentialClientID, Secret: confidentialSecret, Endpoints: all})
	r.AddClient(Client{ID: verifyOnlyClientID, Endpoints: []Endpoint{EndpointVerify}})
	r.AddClient(Client{ID: officeClientID, Endpoints: all, AllowedIPs: []netip.Prefix{officeNetwork}})

	r.AddToken(AccessToken{Token: adaUserToken, ClientID: appClientID, UserID: "ada", Endpoints: all})
	r.AddToken(AccessToken{Token: bobUserToken, ClientID: appClientID, UserID: "bob", Endpoints: all})
	r.AddToken(AccessToken{Token: appClientToken, ClientID: appClientID, Endpoints: all})
	r.AddToken(AccessToken{Token: verifyOnlyToken, ClientID: appClientID, Endpoints: []Endpoint{EndpointVerify}})
	r.SetDefaultClient(appClientID)
	return r
}

// handlerRequest describes one request. An empty method means POST and
// an empty remoteAddr means userRemoteAddr.
type handlerRequest struct {
	method      string
	path        string
	contentType string
	body        string
	header      http.Header
	remoteAddr  string
}

// with returns a copy of r with the header field added.
func (r handlerRequest) with(key, value string) handlerRequest {
	r.header = r.header.Clone()
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Add(key, value)
	return r
}

// formBody encodes name-value pairs in order, keeping repeated names.
func formBody(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(pairs[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(pairs[i+1]))
	}
	return b.String()
}

func postForm(path string, pairs ...string) handlerRequest {
	return handlerRequest{path: path, contentType: formContentType, body: formBody(pairs...)}
}

func postJSON(path, body string) handlerRequest {
	return handlerRequest{path: path, contentType: jsonContentType, body: body}
}

func postMultipart(path string, pairs ...string) handlerRequest {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", multipartBoundary, pairs[i], pairs[i+1])
	}
	fmt.Fprintf(&b, "--%s--\r\n", multipartBoundary)
	return handlerRequest{
		path:        path,
		contentType: "multipart/form-data; boundary=" + multipartBoundary,
		body:        b.String(),
	}
}

func (e *handlerEnv) do(t *testing.T, req handlerRequest) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(cmp.Or(req.method, http.MethodPost), req.path, strings.NewReader(req.body))
	r.RemoteAddr = cmp.Or(req.remoteAddr, userRemoteAddr)
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	for key, values := range req.header {
		for _, v := range values {
			r.Header.Add(key, v)
		}
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, r)
	return rec
}

// startSignIn starts a sign-in with the form parameters and returns its
// token and the message it sent.
func (e *handlerEnv) startSignIn(t *testing.T, pairs ...string) (string, Message) {
	t.Helper()
	before := len(e.outbox.sent())
	c := wantSuccess(t, e.do(t, postForm(apiStart, pairs...)))
	token := tokenOf(t, c.Data)
	sent := e.outbox.sent()
	if len(sent) != before+1 {
		t.Fatalf("start sent %d messages, want 1", len(sent)-before)
	}
	return token, sent[len(sent)-1]
}

// signInClient returns the client ID that the stored sign-in belongs to.
func (e *handlerEnv) signInClient(t *testing.T, token string) string {
	t.Helper()
	signIn, err := e.service.store.Get(t.Context(), token)
	if err != nil {
		t.Fatalf("store.Get(%s): %v", token, err)
	}
	return signIn.ClientID
}

// containerBody is a decoded response container.
type containerBody struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	API     int    `json:"api"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Request struct {
		Reset     int64 `json:"reset"`
		Limit     int   `json:"limit"`
		Remaining int   `json:"remaining"`
	} `json:"request"`
	Meta  json.RawMessage `json:"meta"`
	Error *struct {
		Code        int    `json:"code"`
		Type        string `json:"type"`
		Description string `json:"description"`
	} `json:"error"`
	Data json.RawMessage `json:"data"`
}

// metaBody is the retry information that resend and verify put in meta.
type metaBody struct {
	AttemptsLeft *int   `json:"attemptsLeft"`
	ResendAfter  *int64 `json:"resendAfter"`
}

// checkCommonHeaders checks the headers that every response carries.
func checkCommonHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want %q", got, "no-store")
	}
	if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
}

// decodeContainer decodes a container-style response and checks its fixed
// fields.
func decodeContainer(t *testing.T, rec *httptest.ResponseRecorder) containerBody {
	t.Helper()
	checkCommonHeaders(t, rec)

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &fields); err != nil {
		t.Fatalf("decoding body %q: %v", rec.Body, err)
	}
	for _, key := range []string{"name", "version", "api", "object", "type", "code", "request", "meta", "error", "data"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("container has no %q field; body: %s", key, rec.Body)
		}
	}
	if _, ok := fields["debug"]; ok {
		t.Errorf("container has a debug field although HandlerConfig.Debug is off; body: %s", rec.Body)
	}
	var request map[string]json.RawMessage
	if err := json.Unmarshal(fields["request"], &request); err != nil {
		t.Errorf("request field is not an object: %v; body: %s", err, rec.Body)
	}
	for _, key := range []string{"reset", "limit", "remaining"} {
		if _, ok := request[key]; !ok {
			t.Errorf("request object has no %q field; body: %s", key, rec.Body)
		}
	}

	var c containerBody
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatalf("decoding container %q: %v", rec.Body, err)
	}
	if c.Name != "SPP Container" {
		t.Errorf("name = %q, want %q", c.Name, "SPP Container")
	}
	if c.Version != "0.2" {
		t.Errorf("version = %q, want %q", c.Version, "0.2")
	}
	if c.API != 2 {
		t.Errorf("api = %d, want 2", c.API)
	}
	if c.Object != "Passwordless" {
		t.Errorf("object = %q, want %q", c.Object, "Passwordless")
	}
	if c.Code != rec.Code {
		t.Errorf("code = %d, want the HTTP status %d", c.Code, rec.Code)
	}
	return c
}

// wantSuccess checks a 200 container response.
func wantSuccess(t *testing.T, rec *httptest.ResponseRecorder) containerBody {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body: %s", rec.Code, rec.Body)
	}
	c := decodeContainer(t, rec)
	if c.Type != "element" {
		t.Errorf("type = %q, want %q", c.Type, "element")
	}
	if c.Error != nil {
		t.Errorf("error = %+v, want null", *c.Error)
	}
	return c
}

// wantError checks a container response with an error object.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, description string) containerBody {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d; body: %s", rec.Code, status, rec.Body)
	}
	c := decodeContainer(t, rec)
	if c.Type != "error" {
		t.Errorf("type = %q, want %q", c.Type, "error")
	}
	if string(c.Data) != "null" {
		t.Errorf("data = %s, want null", c.Data)
	}
	if c.Error == nil {
		t.Fatalf("error = null, want an error object; body: %s", rec.Body)
	}
	if c.Error.Code != status {
		t.Errorf("error.code = %d, want %d", c.Error.Code, status)
	}
	if c.Error.Type != "ApiException" {
		t.Errorf("error.type = %q, want %q", c.Error.Type, "ApiException")
	}
	if c.Error.Description != description {
		t.Errorf("error.description = %q, want %q", c.Error.Description, description)
	}
	return c
}

// tokenOf checks a PasswordlessToken data object and returns its token.
func tokenOf(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var fields map[string]string
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatalf("data %s is not an object of strings: %v", data, err)
	}
	if len(fields) != 1 {
		t.Errorf("data has fields %v, want only passwordlessToken", slices.Sorted(maps.Keys(fields)))
	}
	token := fields["passwordlessToken"]
	if !uuidPattern.MatchString(token) {
		t.Fatalf("data.passwordlessToken = %q, want a random UUID", token)
	}
	return token
}

func decodeMeta(t *testing.T, raw json.RawMessage) metaBody {
	t.Helper()
	var m metaBody
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decoding meta %s: %v", raw, err)
	}
	if m.AttemptsLeft == nil || m.ResendAfter == nil {
		t.Fatalf("meta = %s, want attemptsLeft and resendAfter", raw)
	}
	return m
}

// decodeFlat decodes a flat-style response, whose values are all strings.
func decodeFlat(t *testing.T, rec *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	checkCommonHeaders(t, rec)
	var fields map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &fields); err != nil {
		t.Fatalf("decoding flat body %q: %v", rec.Body, err)
	}
	return fields
}

// checkCode checks that a message body carries its six-digit code.
func checkCode(t *testing.T, msg Message) {
	t.Helper()
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(msg.Code) {
		t.Errorf("message code = %q, want six digits", msg.Code)
	}
	if got := sixDigits.FindString(msg.Body); got != msg.Code {
		t.Errorf("six-digit code in body = %q, want %q; body: %q", got, msg.Code, msg.Body)
	}
}

// differentCode returns a six-digit code other than code.
func differentCode(code string) string {
	b := []byte(code)
	last := len(b) - 1
	b[last] = '0' + (b[last]-'0'+1)%10
	return string(b)
}

func TestHandlerStartSends(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		req        handlerRequest
		wantConn   Connection
		wantTo     string
		wantLocale string
		wantClient string
	}{
		{
			name:       "sms",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "email",
			req:        postForm(apiStart, "connection", "email", "email", "user@example.com"),
			wantConn:   Email,
			wantTo:     "user@example.com",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "json body",
			req:        postJSON(apiStart, `{"connection":"sms","phoneNumber":"+46701111111","locale":null}`),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "json body with charset",
			req:        handlerRequest{path: apiStart, contentType: "application/json; charset=utf-8", body: `{"connection":"email","email":"user@example.com"}`},
			wantConn:   Email,
			wantTo:     "user@example.com",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "multipart body",
			req:        postMultipart(apiStart, "connection", "email", "email", "user@example.com", "locale", "sv"),
			wantConn:   Email,
			wantTo:     "user@example.com",
			wantLocale: "sv",
			wantClient: appClientID,
		},
		{
			name:       "json suffix",
			req:        postForm(apiStart+".json", "connection", "sms", "phoneNumber", "+46701111111"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "snake case phone_number",
			req:        postForm(apiStart, "connection", "sms", "phone_number", "+46701111111"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "formatted phone number",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46 70-111 11 11"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "international prefix 00",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "0046701111111"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			// The body that curl sends for the documented "all parameters"
			// example of start. The unescaped "+" decodes to a space.
			name:       "all parameters example",
			req:        handlerRequest{path: apiStart, contentType: formContentType, body: "connection=sms&phoneNumber=+46701111111&&locale=nb_NO"},
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "nb",
			wantClient: appClientID,
		},
		{
			name:       "bcp 47 locale",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "locale", "nb-NO"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "nb",
			wantClient: appClientID,
		},
		{
			name:       "sms connection ignores email",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "email", "not-an-address"),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "email connection ignores phone number",
			req:        postForm(apiStart, "connection", "email", "email", "user@example.com", "phoneNumber", "12"),
			wantConn:   Email,
			wantTo:     "user@example.com",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "email domain lowercased",
			req:        postForm(apiStart, "connection", "email", "email", "User.Name@Example.COM"),
			wantConn:   Email,
			wantTo:     "User.Name@example.com",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "internationalized email domain",
			req:        postForm(apiStart, "connection", "email", "email", "user@bücher.example"),
			wantConn:   Email,
			wantTo:     "user@xn--bcher-kva.example",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "client_id",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "client_id", otherClientID),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: otherClientID,
		},
		{
			name:       "clientId",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "clientId", otherClientID),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: otherClientID,
		},
		{
			name:       "client bearer token",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111").with("Authorization", "Bearer "+appClientToken),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: appClientID,
		},
		{
			name:       "user token of client admin",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "client_id", otherClientID).with("Authorization", "Bearer "+adaUserToken),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: otherClientID,
		},
		{
			name:       "client token for administered client",
			req:        postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "client_id", managedClientID).with("Authorization", "Bearer "+appClientToken),
			wantConn:   SMS,
			wantTo:     "+46701111111",
			wantLocale: "en",
			wantClient: managedClientID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newHandlerEnv(t)

			c := wantSuccess(t, env.do(t, tt.req))
			token := tokenOf(t, c.Data)
			if string(c.Meta) != "null" {
				t.Errorf("meta = %s, want null", c.Meta)
			}
			// The tightest budget of a first start is StartPerDestination,
			// 5 per 15 minutes by default.
			if c.Request.Limit != 5 {
				t.Errorf("request.limit = %d, want 5", c.Request.Limit)
			}
			if c.Request.Remaining != 4 {
				t.Errorf("request.remaining = %d, want 4", c.Request.Remaining)
			}
			if c.Request.Reset < 1 || c.Request.Reset > 15*60 {
				t.Errorf("request.reset = %d, want 1 to 900 seconds", c.Request.Reset)
			}

			sent := env.outbox.sent()
			if len(sent) != 1 {
				t.Fatalf("sent %d messages, want 1", len(sent))
			}
			msg := sent[0]
			if msg.Connection != tt.wantConn {
				t.Errorf("message connection = %q, want %q", msg.Connection, tt.wantConn)
			}
			if msg.To != tt.wantTo {
				t.Errorf("message To = %q, want %q", msg.To, tt.wantTo)
			}
			if got := msg.Locale.String(); got != tt.wantLocale {
				t.Errorf("message locale = %q, want %q", got, tt.wantLocale)
			}
			if msg.Token != token {
				t.Errorf("message token = %q, want the response's %q", msg.Token, token)
			}
			if tt.wantConn == Email && msg.Subject == "" {
				t.Error("email subject is empty")
			}
			checkCode(t, msg)
			if got := env.signInClient(t, token); got != tt.wantClient {
				t.Errorf("sign-in client = %q, want %q", got, tt.wantClient)
			}
		})
	}
}

func TestHandlerStartNorwegianMessage(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t)
	req := handlerRequest{path: apiStart, contentType: formContentType, body: "connection=sms&phoneNumber=+46701111111&&locale=nb_NO"}
	wantSuccess(t, env.do(t, req))

	sent := env.outbox.sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d messages, want 1", len(sent))
	}
	if !strings.Contains(sent[0].Body, "engangskoden") {
		t.Errorf("body = %q, want the Norwegian Bokmål text", sent[0].Body)
	}
}

// errorCase is a request that must fail with the given status and
// description and send no message.
type errorCase struct {
	name        string
	configure   func(*Config, *HandlerConfig)
	req         handlerRequest
	status      int
	description string
	// header lists header fields that the response must have.
	header http.Header
}

func runErrorCases(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var configure []func(*Config, *HandlerConfig)
			if tt.configure != nil {
				configure = append(configure, tt.configure)
			}
			env := newHandlerEnv(t, configure...)

			rec := env.do(t, tt.req)
			wantError(t, rec, tt.status, tt.description)
			for key, want := range tt.header {
				if got := rec.Header().Values(key); !slices.Equal(got, want) {
					t.Errorf("header %s = %q, want %q", key, got, want)
				}
			}
			if n := len(env.outbox.sent()); n != 0 {
				t.Errorf("sent %d messages, want none", n)
			}
		})
	}
}

func TestHandlerStartErrors(t *testing.T) {
	t.Parallel()
	sms := func(phone string, more ...string) handlerRequest {
		return postForm(apiStart, append([]string{"connection", "sms", "phoneNumber", phone}, more...)...)
	}
	email := func(address string) handlerRequest {
		return postForm(apiStart, "connection", "email", "email", address)
	}
	runErrorCases(t, []errorCase{
		{name: "missing connection", req: postForm(apiStart, "phoneNumber", "+46701111111"), status: 400, description: descWantMissingConnection},
		{name: "empty connection", req: postForm(apiStart, "connection", "", "phoneNumber", "+46701111111"), status: 400, description: descWantMissingConnection},
		{name: "no body", req: handlerRequest{path: apiStart}, status: 400, description: descWantMissingConnection},
		{name: "unknown connection", req: postForm(apiStart, "connection", "fax", "phoneNumber", "+46701111111"), status: 400, description: "Invalid connection: expected sms or email"},

		// The documented minimal request, with the default client acting.
		{name: "minimal example", req: handlerRequest{path: apiStart, contentType: formContentType, body: "connection=sms"}, status: 400, description: descWantInvalidIdentifier},
		{name: "empty phone number", req: sms(""), status: 400, description: descWantInvalidIdentifier},
		{name: "short phone number", req: sms("+4670"), status: 400, description: descWantInvalidIdentifier},
		{name: "phone number with letters", req: sms("+46 70 CALL ME"), status: 400, description: descWantInvalidIdentifier},
		{name: "phone number without country code", req: sms("0701111111"), status: 400, description: descWantInvalidIdentifier},
		{name: "phone number with line break", req: sms("+4670111\r\n1111"), status: 400, description: descWantInvalidIdentifier},
		{name: "missing email", req: postForm(apiStart, "connection", "email"), status: 400, description: descWantInvalidIdentifier},
		{name: "email without at sign", req: email("not-an-address"), status: 400, description: descWantInvalidIdentifier},
		{name: "email without domain", req: email("user@"), status: 400, description: descWantInvalidIdentifier},
		{name: "email quoted local part", req: email(`"john.doe"@example.com`), status: 400, description: descWantInvalidIdentifier},
		{name: "email quoted at sign", req: email(`"victim@example.com"@example.org`), status: 400, description: descWantInvalidIdentifier},
		{name: "email with header injection", req: email("user@example.com\r\nBcc: other@example.org"), status: 400, description: descWantInvalidIdentifier},
		{name: "email with line feed", req: email("us\ner@example.com"), status: 400, description: descWantInvalidIdentifier},
		{name: "email list", req: email("user@example.com,other@example.org"), status: 400, description: descWantInvalidIdentifier},
		{name: "email array name", req: postForm(apiStart, "connection", "email", "email[]", "user@example.com"), status: 400, description: descWantInvalidIdentifier},

		{
			name:        "user token without admin rights",
			req:         sms("+46701111111", "client_id", otherClientID).with("Authorization", "Bearer "+bobUserToken),
			status:      401,
			description: descWantUserNotAdmin,
		},
		{
			name:        "client token without admin rights",
			req:         sms("+46701111111", "client_id", otherClientID).with("Authorization", "Bearer "+appClientToken),
			status:      401,
			description: descWantClientNotAdmin,
		},
		{
			name:        "unknown bearer token",
			req:         sms("+46701111111").with("Authorization", "Bearer no-such-token"),
			status:      401,
			description: "Invalid or expired access token",
			header:      http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}},
		},
		{
			name:        "endpoint not allowed",
			req:         sms("+46701111111", "client_id", verifyOnlyClientID),
			status:      403,
			description: descWantEndpointNotAllowed,
		},
		{
			name:        "endpoint not allowed with product name",
			configure:   func(_ *Config, h *HandlerConfig) { h.ProductName = "Acme ID" },
			req:         sms("+46701111111", "client_id", verifyOnlyClientID),
			status:      403,
			description: "Client is not authorized to access this API endpoint. Contact Acme ID to request access.",
		},
		{
			name:        "ip not whitelisted",
			req:         sms("+46701111111", "client_id", officeClientID),
			status:      403,
			description: descWantIPNotAllowed,
		},
		{
			name:        "token not authorized",
			req:         sms("+46701111111").with("Authorization", "Bearer "+verifyOnlyToken),
			status:      403,
			description: descWantTokenNotAllowed,
		},
		{
			name:        "unknown client",
			req:         sms("+46701111111", "client_id", "no-such-client"),
			status:      404,
			description: descWantUnknownClient,
		},
		{
			name:        "token naming unknown client",
			req:         sms("+46701111111", "client_id", "no-such-client").with("Authorization", "Bearer "+appClientToken),
			status:      404,
			description: descWantUnknownClient,
		},
	})
}

func TestHandlerRequestErrors(t *testing.T) {
	t.Parallel()
	validStart := postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111")
	oversized := strings.Repeat("x", 300)
	smallBodies := func(_ *Config, h *HandlerConfig) { h.MaxBodyBytes = 128 }

	runErrorCases(t, []errorCase{
		{
			name:        "get method",
			req:         handlerRequest{method: http.MethodGet, path: apiStart + "?connection=sms"},
			status:      405,
			description: "Method not allowed, use POST",
			header:      http.Header{"Allow": {"POST"}},
		},
		{
			name:        "xml suffix",
			req:         handlerRequest{path: apiStart + ".xml", contentType: validStart.contentType, body: validStart.body},
			status:      400,
			description: "Unsupported response format .xml, only .json is supported",
		},
		{
			name:        "jsonp suffix",
			req:         handlerRequest{path: apiStart + ".jsonp", contentType: validStart.contentType, body: validStart.body},
			status:      400,
			description: "Unsupported response format .jsonp, only .json is supported",
		},
		{
			name:        "unknown endpoint",
			req:         handlerRequest{path: "/api/2/passwordless/finish", contentType: validStart.contentType, body: validStart.body},
			status:      404,
			description: "Not found",
		},
		{
			name:        "path outside prefix",
			req:         handlerRequest{path: "/passwordless/start", contentType: validStart.contentType, body: validStart.body},
			status:      404,
			description: "Not found",
		},
		{
			name:        "text body",
			req:         handlerRequest{path: apiStart, contentType: "text/plain", body: validStart.body},
			status:      415,
			description: "Unsupported content type, use application/x-www-form-urlencoded, multipart/form-data or application/json",
		},
		{
			name:        "body without content type",
			req:         handlerRequest{path: apiStart, body: validStart.body},
			status:      415,
			description: "Unsupported content type, use application/x-www-form-urlencoded, multipart/form-data or application/json",
		},
		{
			name:        "form over body limit",
			configure:   smallBodies,
			req:         postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "padding", oversized),
			status:      413,
			description: "Request body too large",
		},
		{
			name:        "json over body limit",
			configure:   smallBodies,
			req:         postJSON(apiStart, `{"connection":"sms","phoneNumber":"+46701111111","padding":"`+oversized+`"}`),
			status:      413,
			description: "Request body too large",
		},
		{
			name:        "multipart over body limit",
			configure:   smallBodies,
			req:         postMultipart(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "padding", oversized),
			status:      413,
			description: "Request body too large",
		},
		{
			name:        "code in query",
			req:         postForm(apiVerify+"?code=123456", "passwordlessToken", "00000000-0000-4000-8000-000000000000"),
			status:      400,
			description: "Parameter code must be sent in the request body, not the URL",
		},
		{
			name:        "client secret in query",
			req:         postForm(apiStart+"?client_secret="+confidentialSecret, "connection", "sms", "phoneNumber", "+46701111111", "client_id", confidentialClientID),
			status:      400,
			description: "Parameter client_secret must be sent in the request body, not the URL",
		},
		{
			name:        "repeated email",
			req:         postForm(apiStart, "connection", "email", "email", "user@example.com", "email", "other@example.org"),
			status:      400,
			description: "Parameter sent more than once: email",
		},
		{
			name:        "repeated email array",
			req:         postForm(apiStart, "connection", "email", "email[]", "user@example.com", "email[]", "other@example.org"),
			status:      400,
			description: "Parameter sent more than once: email[]",
		},
		{
			name:        "repeated multipart field",
			req:         postMultipart(apiStart, "connection", "email", "email", "user@example.com", "email", "other@example.org"),
			status:      400,
			description: "Parameter sent more than once: email",
		},
		{
			name:        "phone number under both spellings",
			req:         postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "phone_number", "+46702222222"),
			status:      400,
			description: "Parameter sent more than once: phone_number",
		},
		{
			name:        "client id under both spellings",
			req:         postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "client_id", appClientID, "clientId", otherClientID),
			status:      400,
			description: "Parameter sent more than once: clientId",
		},
		{
			name:        "token under both spellings",
			req:         postForm(apiResend, "passwordlessToken", "00000000-0000-4000-8000-000000000000", "passwordless_token", "00000000-0000-4000-8000-000000000001"),
			status:      400,
			description: "Parameter sent more than once: passwordless_token",
		},
		{
			name:        "json number value",
			req:         postJSON(apiStart, `{"connection":"sms","phoneNumber":46701111111}`),
			status:      400,
			description: "Invalid parameter: phoneNumber",
		},
		{
			name:        "json nested object",
			req:         postJSON(apiStart, `{"connection":"sms","phoneNumber":{"number":"+46701111111"}}`),
			status:      400,
			description: "Invalid parameter: phoneNumber",
		},
		{
			name:        "json array value",
			req:         postJSON(apiStart, `{"connection":"email","email":["user@example.com","other@example.org"]}`),
			status:      400,
			description: "Invalid parameter: email",
		},
		{
			name:        "json duplicate key",
			req:         postJSON(apiStart, `{"connection":"email","email":"user@example.com","email":"other@example.org"}`),
			status:      400,
			description: "Parameter sent more than once: email",
		},
		{
			name:        "json both spellings",
			req:         postJSON(apiStart, `{"connection":"sms","phoneNumber":"+46701111111","phone_number":"+46702222222"}`),
			status:      400,
			description: "Parameter sent more than once: phone_number",
		},
		{
			name:        "json array body",
			req:         postJSON(apiStart, `["connection","sms"]`),
			status:      400,
			description: "Invalid parameter: body",
		},
		{
			name:        "json trailing data",
			req:         postJSON(apiStart, `{"connection":"sms","phoneNumber":"+46701111111"} {"email":"user@example.com"}`),
			status:      400,
			description: "Invalid parameter: body",
		},
	})
}

func TestHandlerStartIPAllowlist(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name         string
		trusted      []netip.Prefix
		remoteAddr   string
		forwardedFor string
		wantStatus   int
	}{
		{name: "address on allowlist", remoteAddr: "203.0.113.7:40000", wantStatus: 200},
		{name: "address not on allowlist", remoteAddr: "198.51.100.7:40000", wantStatus: 403},
		{name: "ipv6 address not on allowlist", remoteAddr: "[2001:db8::7]:40000", wantStatus: 403},
		{name: "forwarded for without trusted proxies", remoteAddr: "198.51.100.7:40000", forwardedFor: "203.0.113.7", wantStatus: 403},
		{name: "forwarded for from untrusted peer", trusted: proxies, remoteAddr: "198.51.100.7:40000", forwardedFor: "203.0.113.7", wantStatus: 403},
		{name: "forwarded for from trusted proxy", trusted: proxies, remoteAddr: "10.1.2.3:40000", forwardedFor: "203.0.113.7", wantStatus: 200},
		{name: "trusted proxy forwards outside address", trusted: proxies, remoteAddr: "10.1.2.3:40000", forwardedFor: "198.51.100.7", wantStatus: 403},
		{name: "spoofed first hop behind trusted proxy", trusted: proxies, remoteAddr: "10.1.2.3:40000", forwardedFor: "203.0.113.7, 198.51.100.7", wantStatus: 403},
		{name: "chain of trusted proxies", trusted: proxies, remoteAddr: "10.1.2.3:40000", forwardedFor: "203.0.113.7, 10.9.9.9", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newHandlerEnv(t, func(_ *Config, h *HandlerConfig) { h.TrustedProxies = tt.trusted })
			req := postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111", "client_id", officeClientID)
			req.remoteAddr = tt.remoteAddr
			if tt.forwardedFor != "" {
				req = req.with("X-Forwarded-For", tt.forwardedFor)
			}

			rec := env.do(t, req)
			if tt.wantStatus == http.StatusOK {
				wantSuccess(t, rec)
			} else {
				wantError(t, rec, tt.wantStatus, descWantIPNotAllowed)
			}
		})
	}
}

func TestHandlerStartRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		rateLimitStatus int
		wantStatus      int
	}{
		{name: "default status", wantStatus: StatusRateLimited},
		{name: "configured 429", rateLimitStatus: http.StatusTooManyRequests, wantStatus: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newHandlerEnv(t, func(c *Config, h *HandlerConfig) {
				c.Limits.StartPerIP = Limit{Quota: 1, Window: time.Minute}
				h.RateLimitStatus = tt.rateLimitStatus
			})
			env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111")

			rec := env.do(t, postForm(apiStart, "connection", "email", "email", "user@example.com"))
			c := wantError(t, rec, tt.wantStatus, descWantRateLimited)
			if c.Request.Limit != 1 {
				t.Errorf("request.limit = %d, want 1", c.Request.Limit)
			}
			if c.Request.Remaining != 0 {
				t.Errorf("request.remaining = %d, want 0", c.Request.Remaining)
			}
			if c.Request.Reset < 1 {
				t.Errorf("request.reset = %d, want at least 1", c.Request.Reset)
			}
			retryAfter, err := strconv.Atoi(rec.Header().Get("Retry-After"))
			if err != nil || retryAfter < 1 {
				t.Errorf("Retry-After = %q, want whole seconds of at least 1", rec.Header().Get("Retry-After"))
			}
			if got := rec.Header().Get("RateLimit-Policy"); !strings.Contains(got, "q=1") {
				t.Errorf("RateLimit-Policy = %q, want a policy with q=1", got)
			}
			if got := rec.Header().Get("RateLimit"); !strings.Contains(got, "r=0") {
				t.Errorf("RateLimit = %q, want r=0", got)
			}
			if n := len(env.outbox.sent()); n != 1 {
				t.Errorf("sent %d messages, want only the first start's", n)
			}

			// The budget refills after its window.
			env.clock.Advance(time.Minute)
			env.startSignIn(t, "connection", "email", "email", "user@example.com")
		})
	}
}

func TestHandlerRateLimitStatusOnWire(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t, func(c *Config, _ *HandlerConfig) {
		c.Limits.StartPerIP = Limit{Quota: 1, Window: time.Minute}
	})
	server := httptest.NewServer(env.handler)
	defer server.Close()

	post := func() *http.Response {
		t.Helper()
		body := formBody("connection", "sms", "phoneNumber", "+46701111111")
		resp, err := server.Client().Post(server.URL+apiStart, formContentType, strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first start: status = %d, want 200", resp.StatusCode)
	}
	if resp := post(); resp.StatusCode != StatusRateLimited {
		t.Errorf("second start: status = %d (%q), want %d", resp.StatusCode, resp.Status, StatusRateLimited)
	}
}

func TestHandlerResend(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t)
	token, first := env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111", "locale", "sv")

	// Inside the resend interval.
	rec := env.do(t, postForm(apiResend, "passwordlessToken", token))
	c := wantError(t, rec, http.StatusTooManyRequests, descWantResendLimited)
	meta := decodeMeta(t, c.Meta)
	if *meta.ResendAfter <= 0 {
		t.Errorf("meta.resendAfter = %d, want above 0", *meta.ResendAfter)
	}
	if got, want := rec.Header().Get("Retry-After"), strconv.FormatInt(*meta.ResendAfter, 10); got != want {
		t.Errorf("Retry-After = %q, want %q like meta.resendAfter", got, want)
	}
	if n := len(env.outbox.sent()); n != 1 {
		t.Fatalf("sent %d messages after an early resend, want 1", n)
	}

	env.clock.Advance(31 * time.Second)
	rec = env.do(t, postForm(apiResend, "passwordless_token", token))
	c = wantSuccess(t, rec)
	if got := tokenOf(t, c.Data); got != token {
		t.Errorf("data.passwordlessToken = %q, want the sign-in's %q", got, token)
	}
	meta = decodeMeta(t, c.Meta)
	if *meta.AttemptsLeft != 5 {
		t.Errorf("meta.attemptsLeft = %d, want 5", *meta.AttemptsLeft)
	}
	if *meta.ResendAfter != 30 {
		t.Errorf("meta.resendAfter = %d, want 30", *meta.ResendAfter)
	}
	sent := env.outbox.sent()
	if len(sent) != 2 {
		t.Fatalf("sent %d messages, want 2", len(sent))
	}
	second := sent[1]
	if second.To != first.To {
		t.Errorf("resent to %q, want %q", second.To, first.To)
	}
	if second.Locale != first.Locale {
		t.Errorf("resent in %s, want %s", second.Locale, first.Locale)
	}
	checkCode(t, second)

	if first.Code != second.Code {
		rec = env.do(t, postForm(apiVerify, "passwordlessToken", token, "code", first.Code))
		wantError(t, rec, http.StatusBadRequest, descWantVerifyFailed)
	}
	wantSuccess(t, env.do(t, postForm(apiVerify, "passwordlessToken", token, "code", second.Code)))
}

func TestHandlerResendErrors(t *testing.T) {
	t.Parallel()
	runErrorCases(t, []errorCase{
		{name: "missing token", req: postForm(apiResend), status: 400, description: descWantMissingToken},
		{name: "empty token", req: postForm(apiResend, "passwordless_token", ""), status: 400, description: descWantMissingToken},
		{
			name:        "token not authorized",
			req:         postForm(apiResend, "passwordlessToken", "00000000-0000-4000-8000-000000000000").with("Authorization", "Bearer "+verifyOnlyToken),
			status:      403,
			description: descWantTokenNotAllowed,
		},
		{
			name:        "unknown client",
			req:         postForm(apiResend, "passwordlessToken", "00000000-0000-4000-8000-000000000000", "client_id", "no-such-client"),
			status:      404,
			description: descWantUnknownClient,
		},
	})
}

func TestHandlerClientMismatch(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t)
	token, msg := env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111")
	env.clock.Advance(31 * time.Second)

	tests := []struct {
		name string
		req  handlerRequest
	}{
		{"resend", postForm(apiResend, "passwordlessToken", token, "client_id", otherClientID)},
		{"verify", postForm(apiVerify, "passwordlessToken", token, "code", msg.Code, "client_id", otherClientID)},
		{"verify with bearer token", postForm(apiVerify, "passwordlessToken", token, "code", msg.Code, "client_id", otherClientID).with("Authorization", "Bearer "+adaUserToken)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, env.do(t, tt.req), http.StatusNotFound, descWantClientMismatch)
		})
	}

	if n := len(env.outbox.sent()); n != 1 {
		t.Errorf("sent %d messages, want only the start's", n)
	}
	// The owner can still complete the sign-in.
	wantSuccess(t, env.do(t, postForm(apiVerify, "passwordlessToken", token, "code", msg.Code, "client_id", appClientID)))
}

func TestHandlerVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start []string
		want  map[string]string
	}{
		{
			name:  "sms",
			start: []string{"connection", "sms", "phoneNumber", "+46 70 111 11 11", "locale", "sv"},
			want:  map[string]string{"connection": "sms", "phoneNumber": "+46701111111", "locale": "sv", "clientId": appClientID},
		},
		{
			name:  "email",
			start: []string{"connection", "email", "email", "User@Example.com", "client_id", otherClientID},
			want:  map[string]string{"connection": "email", "email": "user@example.com", "locale": "en", "clientId": otherClientID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newHandlerEnv(t)
			token, msg := env.startSignIn(t, tt.start...)

			params := []string{"passwordless_token", token, "code", msg.Code}
			if client := tt.want["clientId"]; client != appClientID {
				params = append(params, "clientId", client)
			}
			c := wantSuccess(t, env.do(t, postForm(apiVerify+".json", params...)))
			var got map[string]string
			if err := json.Unmarshal(c.Data, &got); err != nil {
				t.Fatalf("data %s is not an object of strings: %v", c.Data, err)
			}
			want := maps.Clone(tt.want)
			want["passwordlessToken"] = token
			if !maps.Equal(got, want) {
				t.Errorf("data = %v, want %v", got, want)
			}

			// A code works once.
			wantError(t, env.do(t, postForm(apiVerify, params...)), http.StatusBadRequest, descWantVerifyFailed)
		})
	}
}

func TestHandlerVerifyWrongCode(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t)
	token, msg := env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111")

	for _, wantLeft := range []int{4, 3} {
		rec := env.do(t, postForm(apiVerify, "passwordlessToken", token, "code", differentCode(msg.Code)))
		c := wantError(t, rec, http.StatusBadRequest, descWantVerifyFailed)
		if got := *decodeMeta(t, c.Meta).AttemptsLeft; got != wantLeft {
			t.Errorf("meta.attemptsLeft = %d, want %d", got, wantLeft)
		}
	}

	// An unknown token fails alike.
	rec := env.do(t, postForm(apiVerify, "passwordlessToken", "00000000-0000-4000-8000-000000000000", "code", msg.Code))
	wantError(t, rec, http.StatusBadRequest, descWantVerifyFailed)
	// A missing code is named.
	rec = env.do(t, postForm(apiVerify, "passwordlessToken", token))
	wantError(t, rec, http.StatusBadRequest, "Missing code")

	wantSuccess(t, env.do(t, postForm(apiVerify, "passwordlessToken", token, "code", msg.Code)))
}

func TestHandlerOnVerified(t *testing.T) {
	t.Parallel()
	t.Run("result is data", func(t *testing.T) {
		t.Parallel()
		env := newHandlerEnv(t, func(_ *Config, h *HandlerConfig) {
			h.OnVerified = func(_ context.Context, r *http.Request, id Identity) (any, error) {
				return map[string]string{"userId": "user-" + id.PhoneNumber, "path": r.URL.Path}, nil
			}
		})
		token, msg := env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111")

		c := wantSuccess(t, env.do(t, postForm(apiVerify, "passwordlessToken", token, "code", msg.Code)))
		var got map[string]string
		if err := json.Unmarshal(c.Data, &got); err != nil {
			t.Fatalf("data %s is not an object of strings: %v", c.Data, err)
		}
		want := map[string]string{"userId": "user-+46701111111", "path": apiVerify}
		if !maps.Equal(got, want) {
			t.Errorf("data = %v, want %v", got, want)
		}
	})

	t.Run("error", func(t *testing.T) {
		t.Parallel()
		env := newHandlerEnv(t, func(_ *Config, h *HandlerConfig) {
			h.OnVerified = func(context.Context, *http.Request, Identity) (any, error) {
				return nil, errors.New("user database unavailable")
			}
		})
		token, msg := env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111")
		verify := postForm(apiVerify, "passwordlessToken", token, "code", msg.Code)

		c := wantError(t, env.do(t, verify), http.StatusInternalServerError, "Internal error")
		if strings.Contains(c.Error.Description, "database") {
			t.Errorf("error.description %q leaks the hook's error", c.Error.Description)
		}
		// The sign-in was consumed before the hook ran.
		wantError(t, env.do(t, verify), http.StatusBadRequest, descWantVerifyFailed)
	})
}

func TestHandlerClientCredentials(t *testing.T) {
	t.Parallel()
	basic := func(id, secret string) string {
		raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
	}
	start := func(more ...string) handlerRequest {
		return postForm(apiStart, append([]string{"connection", "sms", "phoneNumber", "+46701111111"}, more...)...)
	}
	tests := []struct {
		name            string
		req             handlerRequest
		wantStatus      int
		wantDescription string
	}{
		{name: "basic", req: start().with("Authorization", basic(confidentialClientID, confidentialSecret)), wantStatus: 200},
		{name: "basic with matching client_id", req: start("client_id", confidentialClientID).with("Authorization", basic(confidentialClientID, confidentialSecret)), wantStatus: 200},
		{name: "client_secret in body", req: start("client_id", confidentialClientID, "client_secret", confidentialSecret), wantStatus: 200},
		{name: "clientSecret in body", req: start("clientId", confidentialClientID, "clientSecret", confidentialSecret), wantStatus: 200},
		{name: "basic wrong secret", req: start().with("Authorization", basic(confidentialClientID, "wrong")), wantStatus: 401, wantDescription: "Invalid client credentials"},
		{name: "body wrong secret", req: start("client_id", confidentialClientID, "client_secret", "wrong"), wantStatus: 401, wantDescription: "Invalid client credentials"},
		{name: "missing secret", req: start("client_id", confidentialClientID), wantStatus: 401, wantDescription: "Invalid client credentials"},
		{name: "secret for public client", req: start("client_id", otherClientID, "client_secret", confidentialSecret), wantStatus: 401, wantDescription: "Invalid client credentials"},
		{name: "basic unknown client", req: start().with("Authorization", basic("no-such-client", "x")), wantStatus: 404, wantDescription: descWantUnknownClient},
		{name: "basic and body secret", req: start("client_secret", confidentialSecret).with("Authorization", basic(confidentialClientID, confidentialSecret)), wantStatus: 400, wantDescription: "Parameter sent more than once: client_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newHandlerEnv(t)
			rec := env.do(t, tt.req)
			if tt.wantStatus != http.StatusOK {
				wantError(t, rec, tt.wantStatus, tt.wantDescription)
				if n := len(env.outbox.sent()); n != 0 {
					t.Errorf("sent %d messages, want none", n)
				}
				return
			}
			token := tokenOf(t, wantSuccess(t, rec).Data)
			if got := env.signInClient(t, token); got != confidentialClientID {
				t.Errorf("sign-in client = %q, want %q", got, confidentialClientID)
			}
		})
	}
}

func TestHandlerFlatStyle(t *testing.T) {
	t.Parallel()
	flat := func(_ *Config, h *HandlerConfig) { h.Style = FlatStyle }

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		env := newHandlerEnv(t, flat)
		rec := env.do(t, postForm("/passwordless/start", "connection", "sms", "phone_number", "+46701111111", "client_id", otherClientID))
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200; body: %s", rec.Code, rec.Body)
		}
		body := decodeFlat(t, rec)
		if len(body) != 1 || !uuidPattern.MatchString(body["passwordless_token"]) {
			t.Fatalf("body = %s, want only passwordless_token with a UUID", rec.Body)
		}
		if got := env.signInClient(t, body["passwordless_token"]); got != otherClientID {
			t.Errorf("sign-in client = %q, want %q", got, otherClientID)
		}
		if n := len(env.outbox.sent()); n != 1 {
			t.Errorf("sent %d messages, want 1", n)
		}
	})

	tests := []struct {
		name string
		// pairs are the form parameters of a start request.
		pairs       []string
		wantCode    string
		wantMention string
	}{
		{
			name:        "invalid phone_number",
			pairs:       []string{"connection", "sms", "phone_number", "12"},
			wantCode:    "invalid_request",
			wantMention: "phone_number",
		},
		{
			name:        "invalid phoneNumber",
			pairs:       []string{"connection", "sms", "phoneNumber", "12"},
			wantCode:    "invalid_request",
			wantMention: "phoneNumber",
		},
		{
			name:        "invalid email",
			pairs:       []string{"connection", "email", "email", `"quoted"@example.com`},
			wantCode:    "invalid_request",
			wantMention: "email",
		},
		{
			name:        "missing connection",
			pairs:       []string{"phone_number", "+46701111111"},
			wantCode:    "invalid_request",
			wantMention: "connection",
		},
		{
			name:        "phone number under both spellings",
			pairs:       []string{"connection", "sms", "phoneNumber", "+46701111111", "phone_number", "+46701111111"},
			wantCode:    "invalid_request",
			wantMention: "phone_number",
		},
		{
			name:        "repeated email",
			pairs:       []string{"connection", "email", "email", "user@example.com", "email", "other@example.org"},
			wantCode:    "invalid_request",
			wantMention: "email",
		},
		{
			name:     "unknown client_id",
			pairs:    []string{"connection", "sms", "phone_number", "+46701111111", "client_id", "no-such-client"},
			wantCode: "invalid_client",
		},
		{
			name:     "endpoint not allowed",
			pairs:    []string{"connection", "sms", "phone_number", "+46701111111", "client_id", verifyOnlyClientID},
			wantCode: "unauthorized_client",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			containerEnv := newHandlerEnv(t)
			containerRec := containerEnv.do(t, postForm(apiStart, tt.pairs...))
			if containerRec.Code < 400 {
				t.Fatalf("container style: status = %d, want an error", containerRec.Code)
			}

			env := newHandlerEnv(t, flat)
			rec := env.do(t, postForm("/passwordless/start", tt.pairs...))
			if rec.Code != containerRec.Code {
				t.Errorf("status = %d, want %d as in the container style", rec.Code, containerRec.Code)
			}
			body := decodeFlat(t, rec)
			if got := slices.Sorted(maps.Keys(body)); !slices.Equal(got, []string{"error", "error_description"}) {
				t.Errorf("body fields = %q, want error and error_description; body: %s", got, rec.Body)
			}
			if body["error"] != tt.wantCode {
				t.Errorf("error = %q, want %q", body["error"], tt.wantCode)
			}
			if body["error_description"] == "" {
				t.Error("error_description is empty")
			}
			if tt.wantMention != "" && !strings.Contains(body["error_description"], tt.wantMention) {
				t.Errorf("error_description = %q, want it to name %s", body["error_description"], tt.wantMention)
			}
		})
	}

	t.Run("rate limited", func(t *testing.T) {
		t.Parallel()
		env := newHandlerEnv(t, flat, func(c *Config, _ *HandlerConfig) {
			c.Limits.StartPerIP = Limit{Quota: 1, Window: time.Minute}
		})
		start := postForm("/passwordless/start", "connection", "sms", "phone_number", "+46701111111")
		if rec := env.do(t, start); rec.Code != http.StatusOK {
			t.Fatalf("first start: status = %d, want 200; body: %s", rec.Code, rec.Body)
		}

		rec := env.do(t, start)
		if rec.Code != StatusRateLimited {
			t.Errorf("status = %d, want %d", rec.Code, StatusRateLimited)
		}
		if got := decodeFlat(t, rec)["error"]; got != "too_many_requests" {
			t.Errorf("error = %q, want %q", got, "too_many_requests")
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Error("Retry-After is missing")
		}
	})
}

func TestHandlerEmptyFormatSuffix(t *testing.T) {
	t.Parallel()
	// Only the bare path and ".json" name an endpoint, so a trailing dot
	// is an unsupported format suffix like ".xml".
	env := newHandlerEnv(t)
	rec := env.do(t, postForm(apiStart+".", "connection", "sms", "phoneNumber", "+46701111111"))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400; body: %s", rec.Code, rec.Body)
	}
	if c := decodeContainer(t, rec); c.Type != "error" {
		t.Errorf("type = %q, want %q", c.Type, "error")
	}
	if n := len(env.outbox.sent()); n != 0 {
		t.Errorf("sent %d messages, want none", n)
	}
}

func TestHandlerDebugObject(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t, func(_ *Config, h *HandlerConfig) { h.Debug = true })
	tests := []struct {
		name   string
		secret string
		status int
	}{
		{name: "success", secret: confidentialSecret, status: http.StatusOK},
		{name: "wrong secret", secret: "wrong-secret-value", status: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(t, postForm(apiStart+".json", "connection", "sms", "phoneNumber", "+46701111111",
				"client_id", confidentialClientID, "client_secret", tt.secret))
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body: %s", rec.Code, tt.status, rec.Body)
			}
			var body struct {
				Debug *struct {
					Route  string   `json:"route"`
					Params []string `json:"params"`
				} `json:"debug"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("decoding body %q: %v", rec.Body, err)
			}
			if body.Debug == nil {
				t.Fatalf("debug = null, want route and params; body: %s", rec.Body)
			}
			if body.Debug.Route != "passwordless/start" {
				t.Errorf("debug.route = %q, want %q", body.Debug.Route, "passwordless/start")
			}
			wantParams := []string{"client_id", "client_secret", "connection", "phoneNumber"}
			if !slices.Equal(body.Debug.Params, wantParams) {
				t.Errorf("debug.params = %q, want %q", body.Debug.Params, wantParams)
			}
			if strings.Contains(rec.Body.String(), tt.secret) {
				t.Errorf("body contains the client secret: %s", rec.Body)
			}
		})
	}
}

func TestHandlerFlatStyleFlow(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t, func(_ *Config, h *HandlerConfig) { h.Style = FlatStyle })
	token := func(rec *httptest.ResponseRecorder) string {
		t.Helper()
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200; body: %s", rec.Code, rec.Body)
		}
		body := decodeFlat(t, rec)
		if len(body) != 1 || !uuidPattern.MatchString(body["passwordless_token"]) {
			t.Fatalf("body = %s, want only passwordless_token with a UUID", rec.Body)
		}
		return body["passwordless_token"]
	}

	started := token(env.do(t, postForm("/passwordless/start", "connection", "email", "email", "user@example.com", "client_id", appClientID)))
	env.clock.Advance(31 * time.Second)
	resent := token(env.do(t, postForm("/passwordless/resend", "passwordless_token", started, "client_id", appClientID)))
	if resent != started {
		t.Errorf("resend returned token %q, want %q", resent, started)
	}

	sent := env.outbox.sent()
	if len(sent) != 2 {
		t.Fatalf("sent %d messages, want 2", len(sent))
	}
	rec := env.do(t, postForm("/passwordless/verify", "passwordless_token", started, "code", sent[1].Code, "client_id", appClientID))
	if rec.Code != http.StatusOK {
		t.Fatalf("verify: status = %d, want 200; body: %s", rec.Code, rec.Body)
	}
	if got := decodeFlat(t, rec)["email"]; got != "user@example.com" {
		t.Errorf("verified email = %q, want %q", got, "user@example.com")
	}
}

func TestHandlerLimiterFailureLogsOncePerBurst(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	clock := newFakeClock()
	svc, err := New(Config{
		Secret:    testSecret,
		SMSSender: SenderFunc(func(context.Context, Message) error { return nil }),
		Limiter:   &brokenLimiter{},
		Logger:    logger,
		Now:       clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := NewHandler(svc, HandlerConfig{Logger: logger})

	for range 10 {
		req := httptest.NewRequest(http.MethodPost, "/api/2/passwordless/start", strings.NewReader("connection=sms&phoneNumber=%2B46701111111"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status = %d, want 503", rec.Code)
		}
		if strings.Contains(rec.Body.String(), "redis") {
			t.Fatalf("body leaks the backend error: %s", rec.Body.String())
		}
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("logged %d errors for one burst, want 1:\n%s", n, logs.String())
	}
}

func TestHandlerResendExhausted(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t)
	token, _ := env.startSignIn(t, "connection", "sms", "phoneNumber", "+46701111111")
	for range 3 {
		env.clock.Advance(30 * time.Second)
		wantSuccess(t, env.do(t, postForm(apiResend, "passwordlessToken", token)))
	}

	env.clock.Advance(30 * time.Second)
	rec := env.do(t, postForm(apiResend, "passwordlessToken", token))
	c := wantError(t, rec, http.StatusTooManyRequests, descWantResendLimited)
	if meta := decodeMeta(t, c.Meta); *meta.ResendAfter != -1 {
		t.Errorf("meta.resendAfter = %d, want -1 when no resend is left", *meta.ResendAfter)
	}
	if got := rec.Header().Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q, want none: no retry can succeed", got)
	}
}

func TestHandlerEmptyBearerToken(t *testing.T) {
	t.Parallel()
	env := newHandlerEnv(t)
	for _, header := range []string{"Bearer", "Bearer ", "bearer    "} {
		rec := env.do(t, postForm(apiStart, "connection", "sms", "phoneNumber", "+46701111111").with("Authorization", header))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status = %d, want 401", header, rec.Code)
		}
	}
	if n := len(env.outbox.sent()); n != 0 {
		t.Errorf("sent %d messages, want none", n)
	}
}

func TestHandlerUnencodableHookResult(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	svc, err := New(Config{
		Secret:    testSecret,
		SMSSender: SenderFunc(func(context.Context, Message) error { return nil }),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var code string
	svc.senders[SMS] = SenderFunc(func(_ context.Context, m Message) error { code = m.Code; return nil })
	h := NewHandler(svc, HandlerConfig{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnVerified: func(context.Context, *http.Request, Identity) (any, error) {
			return map[string]any{"session": make(chan int)}, nil
		},
	})
	started, err := svc.Start(context.Background(), StartRequest{Connection: "sms", PhoneNumber: "+46701111111"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	req := httptest.NewRequest(http.MethodPost, "/api/2/passwordless/verify",
		strings.NewReader("passwordlessToken="+started.Token+"&code="+code))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	var body struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Code  int    `json:"code"`
		Error struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, rec.Body.String())
	}
	if body.Name != "SPP Container" || body.Type != "error" || body.Code != 500 || body.Error.Description != "Internal error" {
		t.Errorf("body = %+v, want an error container", body)
	}
	if !strings.Contains(logs.String(), "encoding the response failed") {
		t.Errorf("the encoding error was not logged:\n%s", logs.String())
	}
}
