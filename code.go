package passwordless

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
)

// pow10 holds 10^n for the supported code lengths.
var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12}

// Code lengths the service accepts. Six digits carry 19.9 bits of entropy,
// the least that is accepted in practice for out-of-band codes.
const (
	minCodeLength     = 6
	maxCodeLength     = 12
	defaultCodeLength = 6
)

// generateCode returns a uniformly random decimal code of the given number
// of digits, read from r (crypto/rand.Reader in the service). It draws
// 64-bit values and rejects those at or above the largest multiple of
// 10^digits, so every code is equally likely: plain "value % 10^digits"
// would favour the low codes.
func generateCode(r io.Reader, digits int) (string, error) {
	space := pow10[digits]
	limit := (^uint64(0) / space) * space

	var buf [8]byte
	for {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("passwordless: reading random bytes: %w", err)
		}
		v := binary.BigEndian.Uint64(buf[:])
		if v < limit {
			return formatCode(v%space, digits), nil
		}
	}
}

// formatCode writes v as a decimal with leading zeros to the given width.
func formatCode(v uint64, digits int) string {
	var b [maxCodeLength]byte
	for i := digits - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[:digits])
}

// hashCode returns the HMAC-SHA-256 of the code under key, bound to the
// token so that one stored hash cannot serve another sign-in.
func hashCode(key []byte, token, code string) []byte {
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, token)
	mac.Write([]byte{0})
	io.WriteString(mac, code)
	return mac.Sum(nil)
}

// matchCode reports whether code hashes to stored under one of the keys.
// Each comparison takes constant time, and every key is tried, so the
// time spent does not depend on which key, if any, matched.
func matchCode(keys [][]byte, token, code string, stored []byte) bool {
	match := 0
	for _, key := range keys {
		match |= subtle.ConstantTimeCompare(hashCode(key, token, code), stored)
	}
	return match == 1
}
