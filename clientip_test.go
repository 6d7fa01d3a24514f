package passwordless

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	privateV4 := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	privateV6 := []netip.Prefix{netip.MustParsePrefix("fd00::/8")}
	both := append(append([]netip.Prefix{}, privateV4...), privateV6...)

	tests := []struct {
		name         string
		remoteAddr   string
		forwardedFor []string
		trusted      []netip.Prefix
		want         netip.Addr
	}{
		{
			name:       "remote address without header",
			remoteAddr: "203.0.113.7:4321",
			want:       netip.MustParseAddr("203.0.113.7"),
		},
		{
			name:         "no trusted proxies ignore header",
			remoteAddr:   "203.0.113.7:4321",
			forwardedFor: []string{"198.51.100.1"},
			want:         netip.MustParseAddr("203.0.113.7"),
		},
		{
			name:         "untrusted remote ignores header",
			remoteAddr:   "203.0.113.7:4321",
			forwardedFor: []string{"198.51.100.1, 10.0.0.5"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("203.0.113.7"),
		},
		{
			name:       "trusted proxy without header",
			remoteAddr: "10.0.0.2:4321",
			trusted:    privateV4,
			want:       netip.MustParseAddr("10.0.0.2"),
		},
		{
			name:         "trusted proxy with one hop",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"198.51.100.1"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "spoofed leftmost hop",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"192.0.2.66, 198.51.100.1"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "several trusted hops",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"192.0.2.66, 198.51.100.1, 10.0.0.5, 10.0.0.4"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "every hop trusted",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"10.0.0.9, 10.0.0.5"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("10.0.0.9"),
		},
		{
			name:         "malformed nearest hop",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"198.51.100.1, garbage"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("10.0.0.2"),
		},
		{
			name:         "malformed hop behind trusted hop",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"198.51.100.1, unknown, 10.0.0.5"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("10.0.0.5"),
		},
		{
			name:         "malformed hop behind client",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"garbage, 198.51.100.1"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "empty entries skipped",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"198.51.100.1,, ,10.0.0.5"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "hop with port",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"198.51.100.1:5555"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "header lines in order",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"192.0.2.66, 198.51.100.1", "10.0.0.5", "10.0.0.4"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "last header line decides",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"198.51.100.1", "198.51.100.9"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.9"),
		},
		{
			name:       "IPv6 remote address",
			remoteAddr: "[2001:db8::1]:443",
			want:       netip.MustParseAddr("2001:db8::1"),
		},
		{
			name:       "IPv6 remote address with zone",
			remoteAddr: "[fe80::1%eth0]:443",
			want:       netip.MustParseAddr("fe80::1"),
		},
		{
			name:         "IPv6 trusted proxy",
			remoteAddr:   "[fd00::2]:443",
			forwardedFor: []string{"2001:db8::7, fd00::3"},
			trusted:      privateV6,
			want:         netip.MustParseAddr("2001:db8::7"),
		},
		{
			name:         "bracketed IPv6 hop with port",
			remoteAddr:   "[fd00::2]:443",
			forwardedFor: []string{"[2001:db8::7]:5555"},
			trusted:      privateV6,
			want:         netip.MustParseAddr("2001:db8::7"),
		},
		{
			name:         "bracketed IPv6 hop",
			remoteAddr:   "[fd00::2]:443",
			forwardedFor: []string{"[2001:db8::7]"},
			trusted:      privateV6,
			want:         netip.MustParseAddr("2001:db8::7"),
		},
		{
			name:         "mixed families",
			remoteAddr:   "[fd00::2]:443",
			forwardedFor: []string{"198.51.100.1, 10.0.0.5"},
			trusted:      both,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:       "IPv4-mapped remote address",
			remoteAddr: "[::ffff:203.0.113.7]:443",
			want:       netip.MustParseAddr("203.0.113.7"),
		},
		{
			name:         "IPv4-mapped trusted proxy",
			remoteAddr:   "[::ffff:10.0.0.2]:443",
			forwardedFor: []string{"198.51.100.1"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:         "IPv4-mapped hop",
			remoteAddr:   "10.0.0.2:4321",
			forwardedFor: []string{"::ffff:198.51.100.1, ::ffff:10.0.0.5"},
			trusted:      privateV4,
			want:         netip.MustParseAddr("198.51.100.1"),
		},
		{
			name:       "remote address without port",
			remoteAddr: "203.0.113.7",
			want:       netip.MustParseAddr("203.0.113.7"),
		},
		{
			name:       "empty remote address",
			remoteAddr: "",
			want:       netip.Addr{},
		},
		{
			name:         "unparseable remote address",
			remoteAddr:   "proxy.internal:4321",
			forwardedFor: []string{"198.51.100.1"},
			trusted:      []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			want:         netip.Addr{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tt.remoteAddr, Header: http.Header{}}
			for _, v := range tt.forwardedFor {
				r.Header.Add("X-Forwarded-For", v)
			}

			// Comparing netip.Addr values also checks that IPv4-mapped
			// addresses come back unmapped and without a zone.
			if got := clientIP(r, tt.trusted); got != tt.want {
				t.Errorf("clientIP(RemoteAddr %q, X-Forwarded-For %q) = %v, want %v",
					tt.remoteAddr, tt.forwardedFor, got, tt.want)
			}
		})
	}
}

func TestClientIPRealIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name         string
		remoteAddr   string
		realIP       string
		forwardedFor string
		want         netip.Addr
	}{
		{"trusted proxy", "10.0.0.2:4321", "198.51.100.1", "", netip.MustParseAddr("198.51.100.1")},
		{"untrusted remote", "203.0.113.7:4321", "198.51.100.1", "", netip.MustParseAddr("203.0.113.7")},
		{"forwarded for wins", "10.0.0.2:4321", "192.0.2.66", "198.51.100.1", netip.MustParseAddr("198.51.100.1")},
		{"malformed", "10.0.0.2:4321", "not-an-ip", "", netip.MustParseAddr("10.0.0.2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tt.remoteAddr, Header: http.Header{}}
			r.Header.Set("X-Real-IP", tt.realIP)
			if tt.forwardedFor != "" {
				r.Header.Set("X-Forwarded-For", tt.forwardedFor)
			}
			if got := clientIP(r, trusted); got != tt.want {
				t.Errorf("clientIP = %v, want %v", got, tt.want)
			}
		})
	}
}
