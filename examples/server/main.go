// Command server runs the passwordless handler on embedded defaults: an
// in-memory store and limiter, a demo client that serves requests without
// credentials, and a sender that prints every message, code included, to
// standard output. It is for trying the API, not for production.
//
//	go run ./examples/server -addr 127.0.0.1:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on, host:port")
	prefix := flag.String("prefix", "/api/2", "path prefix of the endpoints")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	handler, err := newHandler(os.Stdout, logger, *prefix, nil)
	if err != nil {
		logger.Error("configuring the service failed", "error", err)
		os.Exit(1)
	}

	srv := &http.Server{Addr: *addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()

	logger.Info("listening", "addr", *addr, "start", fmt.Sprintf("POST http://%s%s/passwordless/start", *addr, *prefix))
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("server failed", "error", err)
		os.Exit(1)
	}
}
