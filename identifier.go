package passwordless

import (
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
)

// Connection is the channel a code travels by.
type Connection string

// The connections of the wire contract.
const (
	SMS   Connection = "sms"
	Email Connection = "email"
)

// parseConnection checks a connection parameter.
func parseConnection(s string) (Connection, error) {
	switch c := Connection(strings.ToLower(strings.TrimSpace(s))); c {
	case "":
		return "", &ParamError{Param: "connection", Err: ErrMissingConnection}
	case SMS, Email:
		return c, nil
	default:
		return "", &ParamError{Param: "connection", Err: ErrInvalidConnection}
	}
}

// destination is a validated recipient in two forms: the address to
// deliver to, and the canonical key that budgets and identity checks use.
type destination struct {
	connection Connection
	// address is the recipient of the message: the email address as typed,
	// with the domain lowercased and in punycode, or the E.164 number.
	address string
	// canonical is the identity: the email address case-folded, or the
	// E.164 number. Formatting variants of one destination share it.
	canonical string
	// region is the phone number's ISO 3166 region code, such as "SE".
	region string
}

// maxEmailLength is the longest address SMTP can carry (RFC 5321, 4.5.3.1:
// a 256-octet path less the angle brackets).
const maxEmailLength = 254

var (
	emailValidatorOnce sync.Once
	emailValidator     *validator.Validate
)

// parseEmail validates an email address for delivery. It accepts only plain
// dot-atom local parts in ASCII: quoted local parts, comments, commas,
// angle brackets, whitespace and control characters are rejected, because
// mail systems disagree about them and such tricks have redirected one-time
// codes to attackers. Internationalized domains are converted to punycode.
func parseEmail(param, raw string) (destination, error) {
	fail := func(detail string) (destination, error) {
		return destination{}, &ParamError{Param: param, Err: ErrInvalidIdentifier, Detail: detail}
	}

	s := strings.TrimSpace(raw)
	if s == "" {
		return fail("empty email address")
	}
	if len(s) > maxEmailLength {
		return fail("email address longer than 254 bytes")
	}

	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return fail("email address needs a local part, @ and a domain")
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return fail("local part longer than 64 bytes")
	}
	if !isDotAtom(local) {
		return fail("local part may contain only letters, digits, dots and !#$%&'*+-/=?^_`{|}~")
	}

	asciiDomain, err := idna.Lookup.ToASCII(domain)
	if err != nil || !strings.Contains(asciiDomain, ".") {
		return fail("invalid email domain")
	}
	asciiDomain = strings.ToLower(asciiDomain)

	address := local + "@" + asciiDomain
	emailValidatorOnce.Do(func() { emailValidator = validator.New() })
	if emailValidator.Var(address, "required,email") != nil {
		return fail("invalid email address")
	}

	return destination{
		connection: Email,
		address:    address,
		canonical:  strings.ToLower(address),
	}, nil
}

// isDotAtom reports whether s is an RFC 5322 dot-atom of ASCII characters.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(".!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// smsNumberTypes are the phone number types that can receive SMS. Premium
// rate, shared cost, toll-free and similar ranges are left out, because
// sending to them is how SMS pumping earns money.
var smsNumberTypes = map[phonenumbers.PhoneNumberType]bool{
	phonenumbers.MOBILE:               true,
	phonenumbers.FIXED_LINE_OR_MOBILE: true,
	phonenumbers.PERSONAL_NUMBER:      true,
	phonenumbers.VOIP:                 true,
}

// parsePhone validates a phone number and formats it as E.164. Without a
// default region the number must be international, written with "+" or
// the international prefix "00". A leading space stands for "+".
func parsePhone(param, raw, defaultRegion string) (destination, error) {
	fail := func(detail string) (destination, error) {
		return destination{}, &ParamError{Param: param, Err: ErrInvalidIdentifier, Detail: detail}
	}

	s := strings.TrimSpace(raw)
	if s == "" {
		return fail("empty phone number")
	}
	if strings.HasPrefix(raw, " ") && s[0] >= '0' && s[0] <= '9' {
		// Form encoding turns an unescaped "+" into a space, so the
		// contract's own example "phoneNumber=+46701111111" arrives as
		// " 46701111111".
		s = "+" + s
	}
	if len(s) > 32 || strings.ContainsAny(s, "\r\n\x00") {
		return fail("invalid phone number")
	}
	if defaultRegion == "" && strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	if defaultRegion == "" && !strings.HasPrefix(s, "+") {
		return fail("phone number must be in international form, such as +46701111111")
	}

	number, err := phonenumbers.Parse(s, defaultRegion)
	if err != nil || !phonenumbers.IsValidNumber(number) {
		return fail("invalid phone number")
	}
	if !smsNumberTypes[phonenumbers.GetNumberType(number)] {
		return fail("phone number cannot receive SMS")
	}

	e164 := phonenumbers.Format(number, phonenumbers.E164)
	return destination{
		connection: SMS,
		address:    e164,
		canonical:  e164,
		region:     phonenumbers.GetRegionCodeForNumber(number),
	}, nil
}

// redact shortens an email address or phone number for logs, so that an
// operator can tell entries apart without the logs holding the address.
func redact(s string) string {
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		return firstRune(s[:at]) + "***@" + s[at+1:]
	}
	if len(s) > 5 {
		return s[:3] + strings.Repeat("*", len(s)-5) + s[len(s)-2:]
	}
	return "***"
}

func firstRune(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}
