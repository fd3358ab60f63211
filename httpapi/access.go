package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// LoopbackHosts are the host names of a listener on a loopback address,
// for Config.AllowedHosts.
func LoopbackHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// guard wraps the API's handler with the access rules, in this order:
//
//  1. /healthz and /readyz answer anyone;
//  2. with Config.AllowedHosts, a request whose Host is not one of them is
//     refused (421): on a loopback listener that stops DNS rebinding, a web
//     page whose own name resolves to 127.0.0.1;
//  3. a request a browser sends for another site's page (a form, an image,
//     a script's fetch) is refused (403), by its Sec-Fetch-Site or Origin
//     header; only opening the console page from a link is let through;
//  4. with Config.Token, every other request must carry it as
//     "Authorization: Bearer <token>" (401), except the console page and
//     its files, which hold no data (the page asks for the token), and
//     /metrics with Config.OpenMetrics.
//
// No response carries CORS headers, so a browser lets no other site's
// script read an answer or send the Authorization header; and no cookie is
// ever set, so a browser never adds a credential on its own.
func (s *Server) guard(next http.Handler) http.Handler {
	tokenSum := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if len(s.cfg.AllowedHosts) > 0 && !s.allowedHost(r.Host) {
			fail(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not a name of this listener (it answers to %s): "+
				"a web page under another name may not use it; a reverse proxy in front must pass one of those names, "+
				"or add its name with --http-allow-host", r.Host, strings.Join(s.cfg.AllowedHosts, ", ")))
			return
		}
		consolePage := r.Method == http.MethodGet && (r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/console/"))
		if crossSite(r) && !(consolePage && r.Header.Get("Sec-Fetch-Mode") == "navigate") {
			fail(w, http.StatusForbidden, "a request from a web page of another site: refused (the API answers its own console and programs, not other sites' pages)")
			return
		}
		if s.cfg.Token != "" && !consolePage && !(r.URL.Path == "/metrics" && s.cfg.OpenMetrics) {
			given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			givenSum := sha256.Sum256([]byte(strings.TrimSpace(given)))
			if !ok || subtle.ConstantTimeCompare(givenSum[:], tokenSum[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="stateloop"`)
				msg := "this listener needs its token: send the header Authorization: Bearer <token> (the token of --http-token-file or STATELOOP_HTTP_TOKEN)"
				if ok {
					msg = "the token is not this listener's: send the token of --http-token-file or STATELOOP_HTTP_TOKEN as Authorization: Bearer <token>"
				}
				fail(w, http.StatusUnauthorized, msg)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost reports whether the host of a Host header (with or without
// a port) is one of Config.AllowedHosts, in any case.
func (s *Server) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(host, strings.Trim(a, "[]")) {
			return true
		}
	}
	return false
}

// crossSite reports whether a browser sent r for a page of another site
// (or origin). Browsers say so in Sec-Fetch-Site; older ones send an
// Origin header with cross-origin requests other than GET and HEAD. A
// request without either comes from a program, or from the user's own
// navigation.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
	default: // same-site, cross-site
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}
