package passwordless_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/go-passwordless/passwordless"
)

// A host sends the messages through its own provider; here a stub keeps
// the last code so the example can verify it.
func ExampleService_Start() {
	var lastCode string
	sender := passwordless.SenderFunc(func(ctx context.Context, msg passwordless.Message) error {
		lastCode = msg.Code
		fmt.Printf("%s to %s in %s\n", msg.Connection, msg.To, msg.Locale)
		return nil
	})

	svc, err := passwordless.New(passwordless.Config{
		Secret:    []byte("an example secret of 32 bytes!!!"),
		SMSSender: sender,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	started, err := svc.Start(ctx, passwordless.StartRequest{
		Connection:  "sms",
		PhoneNumber: "+46 70-111 11 11",
		Locale:      "sv_SE",
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	verified, err := svc.Verify(ctx, passwordless.VerifyRequest{Token: started.Token, Code: lastCode})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified", verified.Identity.PhoneNumber)
	// Output:
	// sms to +46701111111 in sv
	// verified +46701111111
}

// The handler mounts on an existing mux; its endpoints live under the
// configured prefix.
func ExampleNewHandler() {
	svc, err := passwordless.New(passwordless.Config{
		Secret:      []byte("an example secret of 32 bytes!!!"),
		EmailSender: passwordless.SenderFunc(func(context.Context, passwordless.Message) error { return nil }),
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	mux.Handle("/api/2/passwordless/", passwordless.NewHandler(svc, passwordless.HandlerConfig{}))

	srv := httptest.NewServer(mux)
	defer srv.Close()

	form := url.Values{"connection": {"email"}, "email": {"ann@example.com"}}
	resp, err := http.Post(srv.URL+"/api/2/passwordless/start", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"passwordlessToken":"`))

	resp, err = http.Post(srv.URL+"/api/2/passwordless/start", "application/x-www-form-urlencoded", strings.NewReader("connection=sms"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"description":"Invalid/empty phone or email"`))
	// Output:
	// 200 true
	// 400 true
}

// Errors carry their reason for logs while the caller responds alike.
func ExampleVerifyError() {
	svc, _ := passwordless.New(passwordless.Config{
		Secret:    []byte("an example secret of 32 bytes!!!"),
		SMSSender: passwordless.SenderFunc(func(context.Context, passwordless.Message) error { return nil }),
		Logger:    slog.New(slog.DiscardHandler),
	})

	_, err := svc.Verify(context.Background(), passwordless.VerifyRequest{
		Token: "2c7d0a64-4d8e-4c1e-9d3a-8f2b7e6a1c55",
		Code:  "123456",
	})
	fmt.Println(errors.Is(err, passwordless.ErrVerificationFailed), errors.Is(err, passwordless.ErrSignInNotFound))
	// Output:
	// true true
}
