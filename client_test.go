package passwordless

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

// newAuthorizeTestRegistry returns a registry with one client or token for
// each decision that Authorize makes.
func newAuthorizeTestRegistry() *ClientRegistry {
	r := &ClientRegistry{}
	r.AddClient(Client{
		ID:          "admin",
		Secret:      "admin-secret",
		Endpoints:   []Endpoint{AllEndpoints},
		Administers: []string{"tenant"},
	})
	r.AddClient(Client{
		ID:        "tenant",
		Endpoints: []Endpoint{EndpointStart, EndpointVerify},
		Admins:    []string{"user-1"},
	})
	r.AddClient(Client{
		ID:        "other",
		Secret:    "other-secret",
		Endpoints: []Endpoint{EndpointStart},
	})
	r.AddClient(Client{ID: "start-only", Endpoints: []Endpoint{EndpointStart}})
	r.AddClient(Client{ID: "no-endpoints"})
	r.AddClient(Client{
		ID:        "office",
		Endpoints: []Endpoint{AllEndpoints},
		AllowedIPs: []netip.Prefix{
			netip.MustParsePrefix("192.0.2.0/24"),
			netip.MustParsePrefix("2001:db8::/32"),
		},
	})
	r.AddClient(Client{ID: "web", Endpoints: []Endpoint{EndpointStart}})

	r.AddToken(AccessToken{Token: "admin-token", ClientID: "admin", Endpoints: []Endpoint{AllEndpoints}})
	r.AddToken(AccessToken{Token: "admin-start-token", ClientID: "admin", Endpoints: []Endpoint{EndpointStart}})
	r.AddToken(AccessToken{Token: "admin-no-endpoints-token", ClientID: "admin"})
	r.AddToken(AccessToken{Token: "user-1-token", ClientID: "admin", UserID: "user-1", Endpoints: []Endpoint{AllEndpoints}})
	r.AddToken(AccessToken{Token: "user-2-token", ClientID: "admin", UserID: "user-2", Endpoints: []Endpoint{AllEndpoints}})
	r.AddToken(AccessToken{Token: "orphan-token", ClientID: "removed", Endpoints: []Endpoint{AllEndpoints}})
	return r
}

func TestClientRegistryAuthorize(t *testing.T) {
	t.Parallel()
	officeIP := netip.MustParseAddr("192.0.2.10")
	outsideIP := netip.MustParseAddr("203.0.113.5")

	tests := []struct {
		name        string
		defaultID   string
		endpoint    Endpoint
		creds       Credentials
		ip          netip.Addr
		wantErr     error
		wantCaller  string
		wantAdminOf []string
	}{
		// Bearer tokens.
		{
			name:     "unknown bearer token",
			endpoint: EndpointStart,
			creds:    Credentials{BearerToken: "no-such-token"},
			wantErr:  ErrInvalidAccessToken,
		},
		{
			name:     "bearer token of removed client",
			endpoint: EndpointStart,
			creds:    Credentials{BearerToken: "orphan-token"},
			wantErr:  ErrInvalidAccessToken,
		},
		{
			name:     "token without the endpoint",
			endpoint: EndpointVerify,
			creds:    Credentials{BearerToken: "admin-start-token"},
			wantErr:  ErrTokenNotAllowed,
		},
		{
			name:     "token without endpoints",
			endpoint: EndpointStart,
			creds:    Credentials{BearerToken: "admin-no-endpoints-token"},
			wantErr:  ErrTokenNotAllowed,
		},
		{
			name:        "token with the endpoint",
			endpoint:    EndpointStart,
			creds:       Credentials{BearerToken: "admin-start-token"},
			wantCaller:  "admin",
			wantAdminOf: []string{"tenant"},
		},
		{
			name:        "token naming its own client",
			endpoint:    EndpointVerify,
			creds:       Credentials{BearerToken: "admin-token", ClientID: "admin"},
			wantCaller:  "admin",
			wantAdminOf: []string{"tenant"},
		},
		{
			name:       "client token naming administered client",
			endpoint:   EndpointVerify,
			creds:      Credentials{BearerToken: "admin-token", ClientID: "tenant"},
			wantCaller: "tenant",
		},
		{
			name:     "client token naming client it does not administer",
			endpoint: EndpointStart,
			creds:    Credentials{BearerToken: "admin-token", ClientID: "other"},
			wantErr:  ErrClientNotAdmin,
		},
		{
			name:       "user token naming client the user administers",
			endpoint:   EndpointVerify,
			creds:      Credentials{BearerToken: "user-1-token", ClientID: "tenant"},
			wantCaller: "tenant",
		},
		{
			name:     "user token naming client the user does not administer",
			endpoint: EndpointVerify,
			creds:    Credentials{BearerToken: "user-2-token", ClientID: "tenant"},
			wantErr:  ErrUserNotAdmin,
		},
		{
			name:     "user token naming client without admins",
			endpoint: EndpointStart,
			creds:    Credentials{BearerToken: "user-1-token", ClientID: "other"},
			wantErr:  ErrUserNotAdmin,
		},
		{
			name:     "token naming unknown client",
			endpoint: EndpointStart,
			creds:    Credentials{BearerToken: "admin-token", ClientID: "nobody"},
			wantErr:  ErrUnknownClient,
		},
		{
			name:     "token acting for client without the endpoint",
			endpoint: EndpointResend,
			creds:    Credentials{BearerToken: "admin-token", ClientID: "tenant"},
			wantErr:  ErrEndpointNotAllowed,
		},

		// Client ID and secret.
		{
			name:     "unknown client ID",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "nobody"},
			wantErr:  ErrUnknownClient,
		},
		{
			name:        "confidential client with right secret",
			endpoint:    EndpointResend,
			creds:       Credentials{ClientID: "admin", ClientSecret: "admin-secret"},
			wantCaller:  "admin",
			wantAdminOf: []string{"tenant"},
		},
		{
			name:     "confidential client with wrong secret",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "admin", ClientSecret: "other-secret"},
			wantErr:  ErrInvalidClientCredentials,
		},
		{
			name:     "confidential client with secret prefix",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "admin", ClientSecret: "admin-secre"},
			wantErr:  ErrInvalidClientCredentials,
		},
		{
			name:     "confidential client without secret",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "admin"},
			wantErr:  ErrInvalidClientCredentials,
		},
		{
			name:       "public client without secret",
			endpoint:   EndpointStart,
			creds:      Credentials{ClientID: "tenant"},
			wantCaller: "tenant",
		},
		{
			name:     "public client with secret",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "tenant", ClientSecret: "guess"},
			wantErr:  ErrInvalidClientCredentials,
		},

		// No credentials.
		{
			name:     "no credentials without default client",
			endpoint: EndpointStart,
			wantErr:  ErrMissingClient,
		},
		{
			name:       "no credentials with default client",
			defaultID:  "web",
			endpoint:   EndpointStart,
			wantCaller: "web",
		},
		{
			name:      "default client without the endpoint",
			defaultID: "web",
			endpoint:  EndpointVerify,
			wantErr:   ErrEndpointNotAllowed,
		},
		{
			name:      "default client outside its allowlist",
			defaultID: "office",
			endpoint:  EndpointStart,
			ip:        outsideIP,
			wantErr:   ErrIPNotAllowed,
		},
		{
			name:      "unregistered default client",
			defaultID: "removed",
			endpoint:  EndpointStart,
			wantErr:   ErrMissingClient,
		},
		{
			name:       "credentials take precedence over default client",
			defaultID:  "web",
			endpoint:   EndpointVerify,
			creds:      Credentials{ClientID: "tenant"},
			wantCaller: "tenant",
		},

		// Endpoints.
		{
			name:     "client without the endpoint",
			endpoint: EndpointVerify,
			creds:    Credentials{ClientID: "start-only"},
			wantErr:  ErrEndpointNotAllowed,
		},
		{
			name:     "client without endpoints",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "no-endpoints"},
			wantErr:  ErrEndpointNotAllowed,
		},
		{
			name:     "unknown endpoint",
			endpoint: "passwordless/other",
			creds:    Credentials{ClientID: "start-only"},
			wantErr:  ErrEndpointNotAllowed,
		},
		{
			name:       "all endpoints grants unknown endpoint",
			endpoint:   "passwordless/other",
			creds:      Credentials{ClientID: "office"},
			ip:         officeIP,
			wantCaller: "office",
		},

		// IP allowlists.
		{
			name:     "IP outside allowlist",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "office"},
			ip:       outsideIP,
			wantErr:  ErrIPNotAllowed,
		},
		{
			name:     "IPv4-mapped IP outside allowlist",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "office"},
			ip:       netip.AddrFrom16(outsideIP.As16()),
			wantErr:  ErrIPNotAllowed,
		},
		{
			name:     "missing IP with allowlist",
			endpoint: EndpointStart,
			creds:    Credentials{ClientID: "office"},
			wantErr:  ErrIPNotAllowed,
		},
		{
			name:       "IPv4 inside allowlist",
			endpoint:   EndpointStart,
			creds:      Credentials{ClientID: "office"},
			ip:         officeIP,
			wantCaller: "office",
		},
		{
			name:       "IPv4-mapped IPv6 inside allowlist",
			endpoint:   EndpointStart,
			creds:      Credentials{ClientID: "office"},
			ip:         netip.MustParseAddr("::ffff:192.0.2.10"),
			wantCaller: "office",
		},
		{
			name:       "IPv6 inside allowlist",
			endpoint:   EndpointStart,
			creds:      Credentials{ClientID: "office"},
			ip:         netip.MustParseAddr("2001:db8::5"),
			wantCaller: "office",
		},
		{
			name:       "empty allowlist allows any IP",
			endpoint:   EndpointStart,
			creds:      Credentials{ClientID: "tenant"},
			ip:         outsideIP,
			wantCaller: "tenant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newAuthorizeTestRegistry()
			r.SetDefaultClient(tt.defaultID)

			got, err := r.Authorize(t.Context(), AuthRequest{Endpoint: tt.endpoint, Credentials: tt.creds, IP: tt.ip})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authorize error = %v, want %v", err, tt.wantErr)
				}
				if got.ClientID != "" || got.Administers != nil {
					t.Errorf("Authorize = %+v with an error, want the zero Caller", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got.ClientID != tt.wantCaller {
				t.Errorf("Caller.ClientID = %q, want %q", got.ClientID, tt.wantCaller)
			}
			if !slices.Equal(got.Administers, tt.wantAdminOf) {
				t.Errorf("Caller.Administers = %q, want %q", got.Administers, tt.wantAdminOf)
			}
		})
	}
}

func TestClientRegistryAllEndpoints(t *testing.T) {
	t.Parallel()
	r := newAuthorizeTestRegistry()
	for _, endpoint := range []Endpoint{EndpointStart, EndpointResend, EndpointVerify} {
		requests := []Credentials{
			{ClientID: "admin", ClientSecret: "admin-secret"},
			{BearerToken: "admin-token"},
		}
		for _, creds := range requests {
			got, err := r.Authorize(t.Context(), AuthRequest{Endpoint: endpoint, Credentials: creds})
			if err != nil {
				t.Errorf("Authorize(%s, %+v): %v", endpoint, creds, err)
				continue
			}
			if got.ClientID != "admin" {
				t.Errorf("Authorize(%s, %+v).ClientID = %q, want %q", endpoint, creds, got.ClientID, "admin")
			}
		}
	}
}

func TestClientRegistryZeroValue(t *testing.T) {
	t.Parallel()
	requests := []struct {
		name    string
		creds   Credentials
		wantErr error
	}{
		{"no credentials", Credentials{}, ErrMissingClient},
		{"client ID", Credentials{ClientID: "web"}, ErrUnknownClient},
		{"client ID and secret", Credentials{ClientID: "web", ClientSecret: "secret"}, ErrUnknownClient},
		{"bearer token", Credentials{BearerToken: "token"}, ErrInvalidAccessToken},
	}
	for _, req := range requests {
		t.Run(req.name, func(t *testing.T) {
			t.Parallel()
			var r ClientRegistry
			for _, endpoint := range []Endpoint{EndpointStart, EndpointResend, EndpointVerify, AllEndpoints} {
				_, err := r.Authorize(t.Context(), AuthRequest{
					Endpoint:    endpoint,
					Credentials: req.creds,
					IP:          netip.MustParseAddr("127.0.0.1"),
				})
				if !errors.Is(err, req.wantErr) {
					t.Errorf("Authorize(%s) error = %v, want %v", endpoint, err, req.wantErr)
				}
			}
		})
	}
}

func TestClientRegistryReplaces(t *testing.T) {
	t.Parallel()
	r := &ClientRegistry{}
	r.AddClient(Client{ID: "app", Secret: "old", Endpoints: []Endpoint{EndpointStart}})
	r.AddClient(Client{ID: "app", Secret: "new", Endpoints: []Endpoint{EndpointStart}})
	r.AddToken(AccessToken{Token: "token", ClientID: "app", Endpoints: []Endpoint{EndpointStart}})
	r.AddToken(AccessToken{Token: "token", ClientID: "app"})

	start := func(creds Credentials) error {
		_, err := r.Authorize(t.Context(), AuthRequest{Endpoint: EndpointStart, Credentials: creds})
		return err
	}
	if err := start(Credentials{ClientID: "app", ClientSecret: "old"}); !errors.Is(err, ErrInvalidClientCredentials) {
		t.Errorf("replaced secret: error = %v, want %v", err, ErrInvalidClientCredentials)
	}
	if err := start(Credentials{ClientID: "app", ClientSecret: "new"}); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if err := start(Credentials{BearerToken: "token"}); !errors.Is(err, ErrTokenNotAllowed) {
		t.Errorf("replaced token: error = %v, want %v", err, ErrTokenNotAllowed)
	}
}

func TestClientRegistryConcurrentUse(t *testing.T) {
	t.Parallel()
	r := &ClientRegistry{}
	r.AddClient(Client{ID: "web", Endpoints: []Endpoint{EndpointStart}})

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r.AddClient(Client{ID: fmt.Sprintf("client-%d", i), Endpoints: []Endpoint{EndpointStart}})
			r.AddToken(AccessToken{Token: fmt.Sprintf("token-%d", i), ClientID: "web", Endpoints: []Endpoint{EndpointStart}})
		})
		wg.Go(func() {
			req := AuthRequest{Endpoint: EndpointStart, Credentials: Credentials{ClientID: "web"}}
			if _, err := r.Authorize(t.Context(), req); err != nil {
				t.Errorf("Authorize during updates: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestCallerMayActFor(t *testing.T) {
	t.Parallel()
	caller := Caller{ClientID: "admin", Administers: []string{"tenant-a", "tenant-b"}}
	tests := []struct {
		clientID string
		want     bool
	}{
		{"admin", true},
		{"tenant-a", true},
		{"tenant-b", true},
		{"other", false},
		{"Admin", false},
		{"tenant", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := caller.mayActFor(tt.clientID); got != tt.want {
			t.Errorf("%+v.mayActFor(%q) = %v, want %v", caller, tt.clientID, got, tt.want)
		}
	}

	alone := Caller{ClientID: "web"}
	if !alone.mayActFor("web") {
		t.Errorf("%+v.mayActFor(%q) = false, want true", alone, "web")
	}
	if alone.mayActFor("admin") {
		t.Errorf("%+v.mayActFor(%q) = true, want false", alone, "admin")
	}
}
