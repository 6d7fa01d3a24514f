// Command oauth shows a host that completes passwordless sign-ins on its own
// OAuth token endpoint, as the upstream API does: POST /oauth/token with
// grant_type=passwordless, identifier, code and passwordless_token. The
// passwordless endpoints are mounted beside it, and codes are printed to
// standard output.
//
//	go run ./examples/oauth -addr 127.0.0.1:8081
package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-passwordless/passwordless"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on, host:port")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	svc, err := passwordless.New(passwordless.Config{
		SMSSender:   &passwordless.PrintSender{},
		EmailSender: &passwordless.PrintSender{},
		Logger:      logger,
	})
	if err != nil {
		logger.Error("configuring the service failed", "error", err)
		os.Exit(1)
	}

	logger.Info("listening", "addr", *addr)
	srv := &http.Server{Addr: *addr, Handler: newMux(svc, newUsers()), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		logger.Error("server failed", "error", err)
		os.Exit(1)
	}
}

// newMux mounts the passwordless endpoints and the token endpoint.
func newMux(svc *passwordless.Service, users *users) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/api/2/", passwordless.NewHandler(svc, passwordless.HandlerConfig{}))
	mux.Handle("POST /oauth/token", tokenEndpoint(svc, users))
	return mux
}

// tokenEndpoint implements the passwordless grant on top of Verify: the
// user is found or created by the verified identity, and gets an access
// token.
func tokenEndpoint(svc *passwordless.Service, users *users) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("grant_type") != "passwordless" {
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be passwordless")
			return
		}
		clientID, clientSecret, _ := r.BasicAuth()

		res, err := svc.Verify(r.Context(), passwordless.VerifyRequest{
			Token:       r.PostFormValue("passwordless_token"),
			Code:        r.PostFormValue("code"),
			Identifier:  r.PostFormValue("identifier"),
			Credentials: passwordless.Credentials{ClientID: clientID, ClientSecret: clientSecret},
		})
		switch {
		case errors.Is(err, passwordless.ErrVerificationFailed):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "invalid or expired code")
			return
		case errors.Is(err, passwordless.ErrRateLimited):
			oauthError(w, http.StatusTooManyRequests, "too_many_requests", "too many requests, retry later")
			return
		case err != nil:
			oauthError(w, passwordless.HTTPStatus(err), "invalid_request", "the request could not be verified")
			return
		}

		userID := users.findOrCreate(res.Identity)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": rand.Text(),
			"token_type":   "Bearer",
			"expires_in":   3600,
			"user_id":      userID,
		})
	})
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// users is a stand-in for the host's user database.
type users struct {
	mu   sync.Mutex
	byID map[string]string
}

func newUsers() *users { return &users{byID: map[string]string{}} }

// findOrCreate returns the user ID for the identity, creating the user on
// first sign-in.
func (u *users) findOrCreate(id passwordless.Identity) string {
	key := string(id.Connection) + ":" + id.Email + id.PhoneNumber
	u.mu.Lock()
	defer u.mu.Unlock()
	if userID, ok := u.byID[key]; ok {
		return userID
	}
	userID := rand.Text()
	u.byID[key] = userID
	return userID
}
