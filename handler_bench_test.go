package passwordless

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchStartBody is the form body of every benchmarked start request.
const benchStartBody = "connection=sms&phoneNumber=%2B46701111111&locale=nb_NO"

// benchToken is the fixed token of the baseline response.
const benchToken = "0b9c1e5a-3f57-4c7e-9a2d-6d1f0e8b4a21"

// disabledLimits turns every rate-limit policy off, so that repeated starts
// to one phone number are never refused.
func disabledLimits() Limits {
	off := Limit{Quota: -1}
	return Limits{
		StartPerIP: off, ResendPerIP: off, VerifyPerIP: off,
		StartPerClient: off, ResendPerClient: off, VerifyPerClient: off,
		StartPerDestination: off, SendsPerDestination: off,
		FailuresPerDestination: off, SMSPerCountry: off,
	}
}

// runStartBenchmark sends identical start requests to h until the
// benchmark ends, and fails on any status but 200.
func runStartBenchmark(b *testing.B, h http.Handler) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, apiStart, strings.NewReader(benchStartBody))
		req.Header.Set("Content-Type", formContentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status = %d, want 200; body: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkHandlerStart measures the whole start path: routing, form
// parsing, client authorization, phone number validation, code and token
// generation, hashing, the in-memory store, message rendering and the
// JSON container. The sender discards messages.
func BenchmarkHandlerStart(b *testing.B) {
	discard := SenderFunc(func(context.Context, Message) error { return nil })
	clients := &ClientRegistry{}
	clients.AddClient(Client{ID: appClientID, Endpoints: []Endpoint{AllEndpoints}})
	clients.SetDefaultClient(appClientID)
	logger := slog.New(slog.DiscardHandler)

	svc, err := New(Config{
		Secret:      handlerSecret,
		Clients:     clients,
		SMSSender:   discard,
		EmailSender: discard,
		Limits:      disabledLimits(),
		Logger:      logger,
	})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	runStartBenchmark(b, NewHandler(svc, HandlerConfig{Logger: logger}))
}

// BenchmarkBaselineStart measures a handler that only parses the same form
// and writes a container of the same shape with a fixed token, as the floor
// that BenchmarkHandlerStart is compared with.
func BenchmarkBaselineStart(b *testing.B) {
	baseline := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("connection") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		body, err := json.Marshal(container{
			Name:    "SPP Container",
			Version: "0.2",
			API:     2,
			Object:  "Passwordless",
			Type:    "element",
			Code:    http.StatusOK,
			Data:    map[string]string{"passwordlessToken": benchToken},
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(append(body, '\n'))
	})
	runStartBenchmark(b, baseline)
}
