package main

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-passwordless/passwordless"
)

// newHandler builds the demo service: the client "demo" may call every
// endpoint and acts for requests without credentials, and messages are
// printed to out. now is the clock; nil means time.Now.
func newHandler(out io.Writer, logger *slog.Logger, prefix string, now func() time.Time) (http.Handler, error) {
	clients := &passwordless.ClientRegistry{}
	clients.AddClient(passwordless.Client{
		ID:        "demo",
		Endpoints: []passwordless.Endpoint{passwordless.AllEndpoints},
	})
	clients.SetDefaultClient("demo")

	printer := &passwordless.PrintSender{W: out}
	svc, err := passwordless.New(passwordless.Config{
		Clients:     clients,
		SMSSender:   printer,
		EmailSender: printer,
		ProductName: "Demo",
		Logger:      logger,
		Now:         now,
	})
	if err != nil {
		return nil, err
	}
	return passwordless.NewHandler(svc, passwordless.HandlerConfig{Prefix: prefix, Logger: logger}), nil
}
