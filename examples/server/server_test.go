package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// printed collects what the demo's sender prints.
type printed struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (p *printed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

var codeLine = regexp.MustCompile(`(\d{6}) `)

// lastCode returns the code of the last printed message.
func (p *printed) lastCode(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	matches := codeLine.FindAllStringSubmatch(p.buf.String(), -1)
	if len(matches) == 0 {
		t.Fatalf("no code printed:\n%s", p.buf.String())
	}
	return matches[len(matches)-1][1]
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type response struct {
	Type  string `json:"type"`
	Code  int    `json:"code"`
	Error *struct {
		Description string `json:"description"`
	} `json:"error"`
	Meta struct {
		AttemptsLeft int `json:"attemptsLeft"`
		ResendAfter  int `json:"resendAfter"`
	} `json:"meta"`
	Data map[string]any `json:"data"`
}

func post(t *testing.T, srv *httptest.Server, path string, form url.Values) response {
	t.Helper()
	resp, err := http.PostForm(srv.URL+path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decoding %s: %v\n%s", path, err, body)
	}
	if r.Code != resp.StatusCode {
		t.Errorf("%s: container code %d, status %d", path, r.Code, resp.StatusCode)
	}
	return r
}

func TestSignInFlowOverHTTP(t *testing.T) {
	out := &printed{}
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	handler, err := newHandler(out, slog.New(slog.DiscardHandler), "/api/2", clk.Now)
	if err != nil {
		t.Fatalf("newHandler: %v", err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	started := post(t, srv, "/api/2/passwordless/start", url.Values{"connection": {"sms"}, "phoneNumber": {"+46701111111"}, "locale": {"nb_NO"}})
	token, _ := started.Data["passwordlessToken"].(string)
	if started.Code != 200 || token == "" {
		t.Fatalf("start = %+v, want 200 with a token", started)
	}
	firstCode := out.lastCode(t)
	if !strings.Contains(out.buf.String(), "engangskoden din") {
		t.Errorf("the SMS is not in Norwegian:\n%s", out.buf.String())
	}

	wrong := post(t, srv, "/api/2/passwordless/verify", url.Values{"passwordlessToken": {token}, "code": {flip(firstCode)}})
	if wrong.Code != 400 || wrong.Error == nil || wrong.Error.Description != "Invalid or expired code" || wrong.Meta.AttemptsLeft != 4 {
		t.Fatalf("wrong code = %+v, want 400 with 4 attempts left", wrong)
	}

	early := post(t, srv, "/api/2/passwordless/resend", url.Values{"passwordless_token": {token}})
	if early.Code != 429 || early.Meta.ResendAfter != 30 {
		t.Errorf("early resend = %+v, want 429 with resendAfter 30", early)
	}
	clk.Advance(30 * time.Second)
	resent := post(t, srv, "/api/2/passwordless/resend", url.Values{"passwordless_token": {token}})
	if resent.Code != 200 || resent.Data["passwordlessToken"] != token {
		t.Fatalf("resend = %+v, want 200 with the same token", resent)
	}
	secondCode := out.lastCode(t)

	form := url.Values{"passwordlessToken": {token}, "code": {secondCode}, "identifier": {"+46 70 111 11 11"}}
	verified := post(t, srv, "/api/2/passwordless/verify", form)
	if verified.Code != 200 || verified.Data["phoneNumber"] != "+46701111111" {
		t.Fatalf("verify = %+v, want 200 with the phone number", verified)
	}

	again := post(t, srv, "/api/2/passwordless/verify", form)
	if again.Code != 400 || again.Error == nil || again.Error.Description != "Invalid or expired code" {
		t.Errorf("second verify = %+v, want 400: a code works once", again)
	}
}

func flip(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}
