package passwordless

import (
	"errors"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// checkParamError fails the test unless err is a *ParamError for param that
// matches want with errors.Is and does not repeat the rejected value.
func checkParamError(t *testing.T, err error, param string, want error, value string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want %v", want)
	}
	var pe *ParamError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %T %v, want *ParamError", err, err)
	}
	if pe.Param != param {
		t.Errorf("ParamError.Param = %q, want %q", pe.Param, param)
	}
	if !errors.Is(err, want) {
		t.Errorf("error = %v, want one matching %v", err, want)
	}
	if v := strings.TrimSpace(value); v != "" && strings.Contains(err.Error(), v) {
		t.Errorf("error %q repeats the rejected value", err)
	}
}

func TestParseConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Connection
		wantErr error
	}{
		{in: "sms", want: SMS},
		{in: "email", want: Email},
		{in: " SMS ", want: SMS},
		{in: "Email", want: Email},
		{in: "", wantErr: ErrMissingConnection},
		{in: "   ", wantErr: ErrMissingConnection},
		{in: "voice", wantErr: ErrInvalidConnection},
		{in: "sms,email", wantErr: ErrInvalidConnection},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseConnection(tt.in)
			if tt.wantErr != nil {
				checkParamError(t, err, "connection", tt.wantErr, "")
				if got != "" {
					t.Errorf("parseConnection(%q) = %q with an error, want empty", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConnection(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseConnection(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEmailValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		in            string
		wantAddress   string
		wantCanonical string
	}{
		{"lowercase", "ada@example.com", "ada@example.com", "ada@example.com"},
		{"mixed case", "Ada.Lovelace@Example.COM", "Ada.Lovelace@example.com", "ada.lovelace@example.com"},
		{"surrounding space", "  Ada@example.com \t", "Ada@example.com", "ada@example.com"},
		{"plus tag", "ada+signin@example.com", "ada+signin@example.com", "ada+signin@example.com"},
		{"dot-atom specials", "a!#$%&'*+-/=?^_`{|}~z@example.com", "a!#$%&'*+-/=?^_`{|}~z@example.com", "a!#$%&'*+-/=?^_`{|}~z@example.com"},
		{"subdomain", "ada@mail.Example.co.uk", "ada@mail.example.co.uk", "ada@mail.example.co.uk"},
		{"IDN domain", "user@bücher.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		{"IDN domain uppercase", "User@BÜCHER.example", "User@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		{"punycode domain", "user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		{"local part of 64 bytes", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEmail("email", tt.in)
			if err != nil {
				t.Fatalf("parseEmail(%q): %v", tt.in, err)
			}
			if got.connection != Email {
				t.Errorf("connection = %q, want %q", got.connection, Email)
			}
			if got.address != tt.wantAddress {
				t.Errorf("address = %q, want %q", got.address, tt.wantAddress)
			}
			if got.canonical != tt.wantCanonical {
				t.Errorf("canonical = %q, want %q", got.canonical, tt.wantCanonical)
			}
			if got.region != "" {
				t.Errorf("region = %q, want empty", got.region)
			}
		})
	}
}

func TestParseEmailInvalid(t *testing.T) {
	t.Parallel()
	// longDomain has labels of 63 bytes, the maximum that DNS allows, so that only
	// the length of the whole address is wrong.
	longDomain := strings.Repeat(strings.Repeat("d", 63)+".", 3) + "example"

	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"only space", "   "},
		{"no at sign", "ada.example.com"},
		{"no local part", "@example.com"},
		{"no domain", "ada@"},
		{"domain without dot", "ada@localhost"},
		{"quoted local part", `"e@attacker.com"@victim.com`},
		{"quoted local part with space", `"ada lovelace"@example.com`},
		{"two addresses with comma", "ada@example.com,eve@attacker.com"},
		{"comma in local part", "ada,eve@example.com"},
		{"display name", "Ada <ada@example.com>"},
		{"angle brackets", "<ada@example.com>"},
		{"comment", "ada(comment)@example.com"},
		{"CRLF header injection", "ada@example.com\r\nBcc: eve@attacker.com"},
		{"LF in local part", "ada\n@example.com"},
		{"CR in domain", "ada@exam\rple.com"},
		{"NUL", "ada\x00@example.com"},
		{"space in local part", "ada lovelace@example.com"},
		{"space in domain", "ada@exam ple.com"},
		{"tab inside", "ada\t@example.com"},
		{"dotless i in local part", "ıda@example.com"},
		{"accented local part", "adé@example.com"},
		{"leading dot", ".ada@example.com"},
		{"trailing dot", "ada.@example.com"},
		{"double dot", "ada..lovelace@example.com"},
		{"two at signs", "ada@eve@example.com"},
		{"IP literal", "ada@[192.0.2.1]"},
		{"empty domain label", "ada@example..com"},
		{"domain label with leading hyphen", "ada@-example.com"},
		{"underscore in domain", "ada@exa_mple.com"},
		{"local part of 65 bytes", strings.Repeat("a", 65) + "@example.com"},
		{"address over 254 bytes", strings.Repeat("a", 60) + "@" + longDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEmail("email", tt.in)
			checkParamError(t, err, "email", ErrInvalidIdentifier, tt.in)
			if got != (destination{}) {
				t.Errorf("parseEmail(%q) = %+v with an error, want the zero destination", tt.in, got)
			}
		})
	}
}

func TestParseEmailLengthLimit(t *testing.T) {
	t.Parallel()
	// The address has 64 + 1 + 189 = 254 bytes, the maximum that SMTP can carry.
	domain := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 53) + ".example"
	in := strings.Repeat("a", 64) + "@" + domain
	if len(in) != maxEmailLength {
		t.Fatalf("test address has %d bytes, want %d", len(in), maxEmailLength)
	}
	if _, err := parseEmail("email", in); err != nil {
		t.Errorf("parseEmail of a %d-byte address: %v", len(in), err)
	}
	if _, err := parseEmail("email", "a"+in); err == nil {
		t.Errorf("parseEmail of a %d-byte address: error = nil, want one", len(in)+1)
	}
}

func TestParseEmailParamName(t *testing.T) {
	t.Parallel()
	_, err := parseEmail("username", "not an address")
	checkParamError(t, err, "username", ErrInvalidIdentifier, "not an address")
}

func TestParsePhoneValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		region     string
		wantE164   string
		wantRegion string
	}{
		{"E.164", "+46701111111", "", "+46701111111", "SE"},
		{"spaces and hyphen", "+46 70-111 11 11", "", "+46701111111", "SE"},
		{"international prefix 00", "0046701111111", "", "+46701111111", "SE"},
		{"leading space for plus", " 46701111111", "", "+46701111111", "SE"},
		{"surrounding space", " +46701111111 ", "", "+46701111111", "SE"},
		{"parentheses", "+46 (70) 111 11 11", "", "+46701111111", "SE"},
		{"national with region", "070-111 11 11", "SE", "+46701111111", "SE"},
		{"international with region", "+46701111111", "SE", "+46701111111", "SE"},
		{"00 with region", "0046701111111", "SE", "+46701111111", "SE"},
		{"other country than region", "+4790000000", "SE", "+4790000000", "NO"},
		{"Norwegian mobile", "+47 900 00 000", "", "+4790000000", "NO"},
		{"US fixed line or mobile", "+1 201-555-0123", "", "+12015550123", "US"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePhone("phoneNumber", tt.in, tt.region)
			if err != nil {
				t.Fatalf("parsePhone(%q, %q): %v", tt.in, tt.region, err)
			}
			if got.connection != SMS {
				t.Errorf("connection = %q, want %q", got.connection, SMS)
			}
			if got.address != tt.wantE164 {
				t.Errorf("address = %q, want %q", got.address, tt.wantE164)
			}
			if got.canonical != tt.wantE164 {
				t.Errorf("canonical = %q, want %q", got.canonical, tt.wantE164)
			}
			if got.region != tt.wantRegion {
				t.Errorf("region = %q, want %q", got.region, tt.wantRegion)
			}
		})
	}
}

func TestParsePhoneInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		region string
	}{
		{"empty", "", ""},
		{"only space", "   ", ""},
		{"national without region", "070-111 11 11", ""},
		{"digits without plus or region", "4790000000", ""},
		{"letters", "call me", ""},
		{"too short", "+4670111", ""},
		{"too long", "+46 70 111 11 11 11 11 11 11 11 11 11", ""},
		{"unassigned country code", "+999701111111", ""},
		{"LF inside", "+46 70\n111 11 11", ""},
		{"CR inside", "+46 70\r111 11 11", ""},
		{"NUL inside", "+46701111111\x00", ""},
		{"two numbers", "+46701111111,+46701111112", ""},
		{"invalid for region", "0123", "SE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePhone("phoneNumber", tt.in, tt.region)
			checkParamError(t, err, "phoneNumber", ErrInvalidIdentifier, tt.in)
			if got != (destination{}) {
				t.Errorf("parsePhone(%q, %q) = %+v with an error, want the zero destination", tt.in, tt.region, got)
			}
		})
	}
}

func TestParsePhoneRejectsNonSMSTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantType phonenumbers.PhoneNumberType
	}{
		{"Swedish toll-free", "+46201234567", phonenumbers.TOLL_FREE},
		{"US toll-free", "+18002530000", phonenumbers.TOLL_FREE},
		{"Swedish premium rate", "+46900123456", phonenumbers.PREMIUM_RATE},
		{"US premium rate", "+19002345678", phonenumbers.PREMIUM_RATE},
		{"Swedish shared cost", "+46771234567", phonenumbers.SHARED_COST},
		{"Swedish fixed line", "+46812345678", phonenumbers.FIXED_LINE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The number must be valid and of the expected type in the
			// bundled metadata, or the rejection below would test nothing.
			number, err := phonenumbers.Parse(tt.in, "")
			if err != nil || !phonenumbers.IsValidNumber(number) {
				t.Fatalf("phonenumbers does not accept %s as valid (error %v)", tt.in, err)
			}
			if got := phonenumbers.GetNumberType(number); got != tt.wantType {
				t.Fatalf("phonenumbers.GetNumberType(%s) = %v, want %v", tt.in, got, tt.wantType)
			}

			_, err = parsePhone("phoneNumber", tt.in, "")
			checkParamError(t, err, "phoneNumber", ErrInvalidIdentifier, tt.in)
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"ada.lovelace@example.com", "a***@example.com"},
		{"Ada@example.com", "A***@example.com"},
		{"ıda@example.com", "ı***@example.com"},
		{"@example.com", "***@example.com"},
		{"+46701111111", "+46*******11"},
		{"+4790000000", "+47******00"},
		{"123456", "123*56"},
		{"1234", "***"},
		{"", "***"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactHidesValue(t *testing.T) {
	t.Parallel()
	inputs := []string{
		"ada.lovelace@example.com",
		"a@example.com",
		"+46701111111",
		"+12015550123",
	}
	// Every length up to that of an E.164 number, so that short values are
	// covered too.
	for n := 1; n <= 16; n++ {
		inputs = append(inputs, "+"+strings.Repeat("7", n-1))
	}
	for _, in := range inputs {
		if got := redact(in); got == in {
			t.Errorf("redact(%q) = %q, want a value that differs from the input", in, got)
		}
	}

	// The middle digits of a phone number identify the subscriber.
	if got := redact("+46701111111"); strings.Contains(got, "701111") {
		t.Errorf("redact(%q) = %q, which contains the subscriber number", "+46701111111", got)
	}
	if got := redact("ada.lovelace@example.com"); strings.Contains(got, "lovelace") {
		t.Errorf("redact(%q) = %q, which contains the local part", "ada.lovelace@example.com", got)
	}
}
