package passwordless

import (
	"context"
	"crypto/subtle"
	"net/netip"
	"slices"
	"sync"
)

// Endpoint names an operation that clients and access tokens are granted.
type Endpoint string

// The endpoints of the service.
const (
	EndpointStart  Endpoint = "passwordless/start"
	EndpointResend Endpoint = "passwordless/resend"
	EndpointVerify Endpoint = "passwordless/verify"
)

// AllEndpoints grants every endpoint when listed in Client.Endpoints or
// AccessToken.Endpoints.
const AllEndpoints Endpoint = "*"

// Credentials are the values a request presents to identify its API client.
type Credentials struct {
	// BearerToken is the access token of an "Authorization: Bearer" header.
	BearerToken string
	// ClientID is the client_id parameter or the HTTP Basic user name.
	ClientID string
	// ClientSecret is the client_secret parameter or the HTTP Basic
	// password.
	ClientSecret string
}

// AuthRequest is what a ClientAuthority decides on.
type AuthRequest struct {
	Endpoint    Endpoint
	Credentials Credentials
	// IP is the client IP address, taken from the connection or from
	// trusted proxies only.
	IP netip.Addr
}

// Caller is the API client on whose behalf a request acts.
type Caller struct {
	// ClientID identifies the client.
	ClientID string
	// Administers lists other clients whose sign-ins this caller may
	// resend and verify.
	Administers []string
}

// mayActFor reports whether the caller owns or administers clientID.
func (c Caller) mayActFor(clientID string) bool {
	return c.ClientID == clientID || slices.Contains(c.Administers, clientID)
}

// ClientAuthority decides which API client a request acts for and whether
// it may call the endpoint. Its errors decide the contract's 401, 403 and
// 404 responses, so an implementation returns one of ErrUnknownClient,
// ErrUserNotAdmin, ErrClientNotAdmin, ErrEndpointNotAllowed,
// ErrIPNotAllowed, ErrTokenNotAllowed, ErrInvalidAccessToken,
// ErrInvalidClientCredentials and ErrMissingClient (wrapped or not), or
// another error for a system failure, which the handler answers with 503.
//
// Implementations must be safe for concurrent use.
type ClientAuthority interface {
	Authorize(ctx context.Context, req AuthRequest) (Caller, error)
}

// Client is an API client registered in a ClientRegistry.
type Client struct {
	// ID is the client ID.
	ID string
	// Secret is the client secret. Empty means a public client, which
	// identifies itself with its ID alone.
	Secret string
	// Endpoints lists what the client may call; AllEndpoints grants all.
	// Empty grants nothing.
	Endpoints []Endpoint
	// AllowedIPs lists the networks that may call as this client. Empty
	// allows any address.
	AllowedIPs []netip.Prefix
	// Administers lists the IDs of other clients this client administers.
	Administers []string
	// Admins lists the user IDs that administer this client.
	Admins []string
}

// AccessToken is a bearer token registered in a ClientRegistry.
type AccessToken struct {
	// Token is the bearer token's value.
	Token string
	// ClientID is the client the token was issued to.
	ClientID string
	// UserID is the user the token acts for; empty for a client token.
	UserID string
	// Endpoints lists what the token may call; AllEndpoints grants all.
	// Empty grants nothing.
	Endpoints []Endpoint
}

// ClientRegistry is an in-memory ClientAuthority: a set of clients and
// access tokens, and optionally a default client for requests that carry no
// credentials. It is safe for concurrent use; the zero value is an empty
// registry that rejects every request.
type ClientRegistry struct {
	mu            sync.RWMutex
	clients       map[string]Client
	tokens        map[string]AccessToken
	defaultClient string
}

var _ ClientAuthority = (*ClientRegistry)(nil)

// AddClient registers or replaces a client. The registry keeps copies of
// the client's slices.
func (r *ClientRegistry) AddClient(c Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients == nil {
		r.clients = make(map[string]Client)
	}
	c.Endpoints = slices.Clone(c.Endpoints)
	c.AllowedIPs = slices.Clone(c.AllowedIPs)
	c.Administers = slices.Clone(c.Administers)
	c.Admins = slices.Clone(c.Admins)
	r.clients[c.ID] = c
}

// AddToken registers or replaces an access token.
func (r *ClientRegistry) AddToken(t AccessToken) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens == nil {
		r.tokens = make(map[string]AccessToken)
	}
	t.Endpoints = slices.Clone(t.Endpoints)
	r.tokens[t.Token] = t
}

// SetDefaultClient makes requests without credentials act as the client
// with the ID; an empty ID turns this off. The client's endpoint and IP
// rules still apply.
//
// WARNING: every anonymous caller acts as this client, so use it only for
// public clients and guard it with rate limits.
func (r *ClientRegistry) SetDefaultClient(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.defaultClient = id
}

// Authorize implements ClientAuthority.
//
// A bearer token takes precedence: it must be registered and granted the
// endpoint. If the request also names another client ID, the token's user
// (for a user token) or client (for a client token) must administer that
// client, and the request acts for it. Without a token, the client ID must
// be registered and its secret, if it has one, must match. Without either,
// the default client acts. In every case the acting client must be granted
// the endpoint and the IP address must be on its allowlist.
func (r *ClientRegistry) Authorize(_ context.Context, req AuthRequest) (Caller, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()

	client, err := r.resolve(req)
	if err != nil {
		return Caller{}, err
	}
	if !grants(client.Endpoints, req.Endpoint) {
		return Caller{}, ErrEndpointNotAllowed
	}
	if len(client.AllowedIPs) > 0 && !containsAddr(client.AllowedIPs, req.IP) {
		return Caller{}, ErrIPNotAllowed
	}
	return Caller{ClientID: client.ID, Administers: slices.Clone(client.Administers)}, nil
}

// resolve finds the client a request acts for. The caller holds mu.
func (r *ClientRegistry) resolve(req AuthRequest) (Client, error) {
	creds := req.Credentials

	if creds.BearerToken != "" {
		token, ok := r.tokens[creds.BearerToken]
		if !ok {
			return Client{}, ErrInvalidAccessToken
		}
		if !grants(token.Endpoints, req.Endpoint) {
			return Client{}, ErrTokenNotAllowed
		}
		owner, ok := r.clients[token.ClientID]
		if !ok {
			return Client{}, ErrInvalidAccessToken
		}
		if creds.ClientID == "" || creds.ClientID == owner.ID {
			return owner, nil
		}

		target, ok := r.clients[creds.ClientID]
		if !ok {
			return Client{}, ErrUnknownClient
		}
		if token.UserID != "" {
			if !slices.Contains(target.Admins, token.UserID) {
				return Client{}, ErrUserNotAdmin
			}
			return target, nil
		}
		if !slices.Contains(owner.Administers, target.ID) {
			return Client{}, ErrClientNotAdmin
		}
		return target, nil
	}

	if creds.ClientID != "" {
		client, ok := r.clients[creds.ClientID]
		if !ok {
			return Client{}, ErrUnknownClient
		}
		if client.Secret != "" || creds.ClientSecret != "" {
			// Compare even when one side is empty, so a secret sent for a
			// public client is rejected instead of silently ignored.
			if subtle.ConstantTimeCompare([]byte(client.Secret), []byte(creds.ClientSecret)) != 1 {
				return Client{}, ErrInvalidClientCredentials
			}
		}
		return client, nil
	}

	if r.defaultClient == "" {
		return Client{}, ErrMissingClient
	}
	client, ok := r.clients[r.defaultClient]
	if !ok {
		return Client{}, ErrMissingClient
	}
	return client, nil
}

func grants(granted []Endpoint, e Endpoint) bool {
	return slices.Contains(granted, AllEndpoints) || slices.Contains(granted, e)
}

func containsAddr(prefixes []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
