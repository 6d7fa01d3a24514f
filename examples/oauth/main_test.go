package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/go-passwordless/passwordless"
)

func TestPasswordlessGrant(t *testing.T) {
	var code string
	svc, err := passwordless.New(passwordless.Config{
		Secret: []byte("a test secret of at least 32 b.."),
		EmailSender: passwordless.SenderFunc(func(_ context.Context, m passwordless.Message) error {
			code = m.Code
			return nil
		}),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(newMux(svc, newUsers()))
	defer srv.Close()

	resp, err := http.PostForm(srv.URL+"/api/2/passwordless/start", url.Values{"connection": {"email"}, "email": {"Ann@Example.com"}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var started struct {
		Data struct {
			Token string `json:"passwordlessToken"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()

	grant := func(code string) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/oauth/token", url.Values{
			"grant_type":         {"passwordless"},
			"identifier":         {"ann@example.com"},
			"code":               {code},
			"passwordless_token": {started.Data.Token},
		})
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	status, body := grant(code)
	if status != 200 || body["access_token"] == "" || body["token_type"] != "Bearer" || body["user_id"] == "" {
		t.Fatalf("grant = %d %v, want 200 with a bearer token", status, body)
	}
	status, body = grant(code)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("second grant = %d %v, want 400 invalid_grant", status, body)
	}
}

func TestGrantTypeRequired(t *testing.T) {
	svc, err := passwordless.New(passwordless.Config{Secret: []byte("a test secret of at least 32 b.."), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(newMux(svc, newUsers()))
	defer srv.Close()

	resp, err := http.PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"password"}})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body["error"] != "unsupported_grant_type" {
		t.Errorf("got %d %v, want 400 unsupported_grant_type", resp.StatusCode, body)
	}
}
