package passwordless

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address of the client that made r. It starts from the
// connection's remote address and, only while that address is a trusted
// proxy, steps back through X-Forwarded-For from right to left, so that
// each hop is vouched for by the one after it. Without X-Forwarded-For, a
// trusted proxy's X-Real-IP is read instead. A caller outside the trusted
// ranges therefore cannot choose its address by sending the header. The
// result is the zero Addr when the remote address cannot be parsed.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := parseAddr(r.RemoteAddr)
	if !addr.IsValid() || len(trusted) == 0 || !containsAddr(trusted, addr) {
		return addr
	}

	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	if len(hops) == 0 {
		// Some proxies send only X-Real-IP, with the one address they saw.
		if realIP := r.Header.Get("X-Real-IP"); realIP != "" {
			hops = []string{strings.TrimSpace(realIP)}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := parseAddr(hops[i])
		if !hop.IsValid() {
			// A malformed entry cannot be vouched for, so the last trusted
			// proxy is the best-known client address.
			return addr
		}
		addr = hop
		if !containsAddr(trusted, addr) {
			return addr
		}
	}
	return addr
}

// forwardedFor splits the values of X-Forwarded-For headers into hops, in
// order from the original client to the nearest proxy.
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, hop := range strings.Split(v, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// parseAddr parses "host:port", "[v6]:port" or a bare address, and unmaps
// IPv4-mapped IPv6 addresses.
func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap().WithZone("")
}
