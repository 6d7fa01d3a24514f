package passwordless

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// randomValues returns a reader of the values as big-endian uint64s, the
// form generateCode reads.
func randomValues(values ...uint64) *bytes.Reader {
	b := make([]byte, 0, 8*len(values))
	for _, v := range values {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return bytes.NewReader(b)
}

// rejectionLimit is the largest multiple of 10^digits that fits in a
// uint64. generateCode must reject values at or above it, because the
// values from there to math.MaxUint64 do not cover every code equally.
func rejectionLimit(digits int) uint64 {
	space := uint64(1)
	for range digits {
		space *= 10
	}
	return math.MaxUint64 - math.MaxUint64%space
}

// errRandomSource is the error that randomSourceError returns.
var errRandomSource = errors.New("random source failed")

// randomSourceError is a reader that always fails.
type randomSourceError struct{}

func (randomSourceError) Read([]byte) (int, error) { return 0, errRandomSource }

func TestGenerateCodeValues(t *testing.T) {
	t.Parallel()
	limit := rejectionLimit(6)
	tests := []struct {
		name   string
		values []uint64
		want   string
	}{
		{"zero", []uint64{0}, "000000"},
		{"small value padded", []uint64{42}, "000042"},
		{"largest code", []uint64{999_999}, "999999"},
		{"wraps at one million", []uint64{1_000_000}, "000000"},
		{"last block starts at zero", []uint64{limit - 1_000_000}, "000000"},
		{"largest accepted value", []uint64{limit - 1}, "999999"},
		{"limit rejected", []uint64{limit, 42}, "000042"},
		{"maximum rejected", []uint64{math.MaxUint64, 123_456}, "123456"},
		{"several rejected", []uint64{limit, limit + 1, math.MaxUint64, 7}, "000007"},
		{"large accepted value", []uint64{123_456_789_012_345}, "012345"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := randomValues(tt.values...)
			got, err := generateCode(r, 6)
			if err != nil {
				t.Fatalf("generateCode: %v", err)
			}
			if got != tt.want {
				t.Errorf("generateCode(%d) = %q, want %q", tt.values, got, tt.want)
			}
			if r.Len() != 0 {
				t.Errorf("generateCode left %d bytes unread, want it to stop at the first accepted value", r.Len())
			}
		})
	}
}

func TestGenerateCodeLengths(t *testing.T) {
	t.Parallel()
	for digits := minCodeLength; digits <= maxCodeLength; digits++ {
		t.Run(strconv.Itoa(digits), func(t *testing.T) {
			t.Parallel()
			limit := rejectionLimit(digits)
			tests := []struct {
				name   string
				values []uint64
				want   string
			}{
				{"zero", []uint64{0}, strings.Repeat("0", digits)},
				{"digits kept from the right", []uint64{123_456_789_012}, "123456789012"[12-digits:]},
				{"largest accepted value", []uint64{limit - 1}, strings.Repeat("9", digits)},
				{"limit rejected", []uint64{limit, 5}, strings.Repeat("0", digits-1) + "5"},
			}
			for _, tt := range tests {
				got, err := generateCode(randomValues(tt.values...), digits)
				if err != nil {
					t.Fatalf("%s: generateCode: %v", tt.name, err)
				}
				if got != tt.want {
					t.Errorf("%s: generateCode(%d, %d) = %q, want %q", tt.name, tt.values, digits, got, tt.want)
				}
			}
		})
	}
}

func TestGenerateCodeReaderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		r       io.Reader
		wantErr error
	}{
		{"empty", bytes.NewReader(nil), io.EOF},
		{"short", bytes.NewReader([]byte{1, 2, 3}), io.ErrUnexpectedEOF},
		{"ends after rejected value", randomValues(rejectionLimit(6)), io.EOF},
		{"failing", randomSourceError{}, errRandomSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := generateCode(tt.r, 6)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("generateCode error = %v, want %v", err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("generateCode = %q with an error, want empty", got)
			}
		})
	}
}

func TestFormatCodeCoversRange(t *testing.T) {
	t.Parallel()
	// Parsing each code back to its value proves that the codes are
	// distinct and that every one of the 10^6 codes is produced.
	for v := range uint64(1_000_000) {
		code := formatCode(v, 6)
		if len(code) != 6 {
			t.Fatalf("formatCode(%d, 6) = %q, want 6 digits", v, code)
		}
		got, err := strconv.ParseUint(code, 10, 64)
		if err != nil || got != v {
			t.Fatalf("formatCode(%d, 6) = %q, which does not read back as %d", v, code, v)
		}
	}
}

func TestGenerateCodeDistribution(t *testing.T) {
	t.Parallel()
	// Each digit of 100,000 uniform codes takes each value 10,000 times on
	// average, with a standard deviation of about 95. The bounds of 8,000
	// and 12,000 are more than 20 standard deviations away, so a correct
	// generator fails this statistical check with negligible probability.
	const n = 100_000
	var counts [6][10]int
	for range n {
		code, err := generateCode(rand.Reader, 6)
		if err != nil {
			t.Fatalf("generateCode: %v", err)
		}
		for i := range len(code) {
			counts[i][code[i]-'0']++
		}
	}
	for position, digits := range counts {
		for digit, count := range digits {
			if count < n*8/100 || count > n*12/100 {
				t.Errorf("digit %d at position %d in %d of %d codes, want 8%% to 12%%", digit, position, count, n)
			}
		}
	}
}

func TestHashCode(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0x01}, 32)
	otherKey := bytes.Repeat([]byte{0x02}, 32)
	const token, code = "4f9c1f4e-8d8a-4b7e-9f3e-2a6c1d0b5e77", "123456"

	h := hashCode(key, token, code)
	if len(h) != sha256.Size {
		t.Errorf("len(hashCode) = %d, want %d", len(h), sha256.Size)
	}
	if again := hashCode(key, token, code); !bytes.Equal(again, h) {
		t.Errorf("hashCode is not deterministic: %x, then %x", h, again)
	}

	// Stored hashes must stay valid across releases, so the construction is
	// fixed: HMAC-SHA-256 over the token, a zero byte and the code.
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(token + "\x00" + code))
	if want := mac.Sum(nil); !bytes.Equal(h, want) {
		t.Errorf("hashCode = %x, want HMAC-SHA-256(token || 0x00 || code) = %x", h, want)
	}

	variants := []struct {
		name        string
		key         []byte
		token, code string
	}{
		{"other key", otherKey, token, code},
		{"other token", key, "0b9a7c55-3e7d-4f0e-8a59-6f1c2d3e4f50", code},
		{"other code", key, token, "123457"},
		{"code with leading zero", key, token, "0123456"},
		{"token and code split elsewhere", key, token + "1", "23456"},
	}
	for _, v := range variants {
		if got := hashCode(v.key, v.token, v.code); bytes.Equal(got, h) {
			t.Errorf("hashCode with %s = %x, want it to differ", v.name, got)
		}
	}
}

func TestMatchCode(t *testing.T) {
	t.Parallel()
	current := bytes.Repeat([]byte{0x0c}, 32)
	previous := bytes.Repeat([]byte{0x0b}, 32)
	retired := bytes.Repeat([]byte{0x0a}, 32)
	const token, code = "4f9c1f4e-8d8a-4b7e-9f3e-2a6c1d0b5e77", "654321"
	const otherToken = "0b9a7c55-3e7d-4f0e-8a59-6f1c2d3e4f50"
	stored := hashCode(current, token, code)

	tests := []struct {
		name   string
		keys   [][]byte
		token  string
		code   string
		stored []byte
		want   bool
	}{
		{"current key", [][]byte{current, previous}, token, code, stored, true},
		{"only key", [][]byte{current}, token, code, stored, true},
		{"previous key", [][]byte{current, previous}, token, code, hashCode(previous, token, code), true},
		{"retired key", [][]byte{current, previous}, token, code, hashCode(retired, token, code), false},
		{"wrong code", [][]byte{current, previous}, token, "654320", stored, false},
		{"empty code", [][]byte{current, previous}, token, "", stored, false},
		{"hash of another token", [][]byte{current, previous}, token, code, hashCode(current, otherToken, code), false},
		{"checked for another token", [][]byte{current, previous}, otherToken, code, stored, false},
		{"no keys", nil, token, code, stored, false},
		{"truncated hash", [][]byte{current}, token, code, stored[:16], false},
		{"empty hash", [][]byte{current}, token, code, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := matchCode(tt.keys, tt.token, tt.code, tt.stored); got != tt.want {
				t.Errorf("matchCode = %v, want %v", got, tt.want)
			}
		})
	}
}
