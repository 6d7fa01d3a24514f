package passwordless

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
)

// Message is a one-time code ready to deliver, with its text rendered in
// the recipient's language.
type Message struct {
	// Connection is SMS or Email.
	Connection Connection
	// To is the recipient: an E.164 phone number or an email address. It
	// never contains CR or LF.
	To string
	// Code is the one-time code.
	Code string
	// Token is the passwordless token of the sign-in.
	Token string
	// Locale is the language of Subject and Body.
	Locale language.Tag
	// Subject is the email subject; empty for SMS. It never contains CR or
	// LF.
	Subject string
	// Body is the SMS text or the plain-text email body.
	Body string
}

// Sender delivers messages of one connection, such as an SMS gateway or an
// email service. Send returns when the provider has accepted the message;
// an error means it was not sent. Implementations must be safe for
// concurrent use, must honour ctx's deadline, and must never log
// Message.Code.
type Sender interface {
	Send(ctx context.Context, msg Message) error
}

// SenderFunc adapts a function to the Sender interface.
type SenderFunc func(ctx context.Context, msg Message) error

// Send calls f(ctx, msg).
func (f SenderFunc) Send(ctx context.Context, msg Message) error { return f(ctx, msg) }

// PrintSender is a Sender for development that writes each message, code
// included, to W instead of delivering it.
//
// WARNING: it prints one-time codes. The service logs a warning when it is
// configured, and it must not be used in production.
type PrintSender struct {
	// W receives the messages; nil means os.Stdout.
	W io.Writer

	mu sync.Mutex
}

var _ Sender = (*PrintSender)(nil)

// Send writes msg to W.
func (p *PrintSender) Send(_ context.Context, msg Message) error {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s to %s (%s)\n", strings.ToUpper(string(msg.Connection)), msg.To, msg.Locale)
	if msg.Subject != "" {
		fmt.Fprintf(&b, "Subject: %s\n\n", msg.Subject)
	}
	b.WriteString(strings.TrimRight(msg.Body, "\n"))
	b.WriteString("\n---\n")

	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.W
	if w == nil {
		w = os.Stdout
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// send renders the message for the sign-in and hands it to the sender.
func (s *Service) send(ctx context.Context, sender Sender, signIn SignIn, localeIndex int, code string) error {
	text, err := s.catalog.render(localeIndex, signIn.Connection, templateData{
		Code:    code,
		Minutes: int(s.codeTTL.Round(time.Minute) / time.Minute),
		Product: s.catalog.product,
	})
	if err != nil {
		return wrapErr(ErrSendFailed, err)
	}

	msg := Message{
		Connection: signIn.Connection,
		To:         signIn.Recipient,
		Code:       code,
		Token:      signIn.Token,
		Locale:     s.catalog.tags[localeIndex],
		Subject:    text.subject,
		Body:       text.body,
	}
	if err := sender.Send(ctx, msg); err != nil {
		s.logger.Error("passwordless: sending the code failed",
			"connection", signIn.Connection, "to", redact(signIn.Recipient), "token", signIn.Token, "error", err)
		return wrapErr(ErrSendFailed, err)
	}
	return nil
}
