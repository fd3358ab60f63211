package module

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/stateloop/stateloop/functions"
)

var endpointV2Keys = keySpec{
	keys: []string{"functions", "urlPathTemplate", "maxNumBatchRequests", "transport"},
	hints: map[string]string{
		"timeouts": "in " + string(KindHTTPEndpointV2) + " timeouts go under transport: transport.call and transport.connect (async), or transport.timeouts (okhttp)",
	},
}

var endpointV1Keys = keySpec{
	keys: []string{"functions", "urlPathTemplate", "maxNumBatchRequests", "timeouts"},
	hints: map[string]string{
		"transport": string(KindHTTPEndpointV1) + " always uses the okhttp transport; to choose a transport use kind " + string(KindHTTPEndpointV2),
	},
}

const functionsWant = `a function type like "com.example/greeter", or "com.example/*" for every function of the namespace`

// endpoint reads an io.statefun.endpoints.v1/http or v2/http spec.
func (c *component) endpoint(kind Kind) *Endpoint {
	keys := endpointV2Keys
	if kind == KindHTTPEndpointV1 {
		keys = endpointV1Keys
	}
	spec := c.mapping(c.spec, keys)
	e := &Endpoint{Pos: c.pos(c.spec.node), Kind: kind}
	fns := c.required(spec, "functions", functionsWant)
	tmpl := c.required(spec, "urlPathTemplate", `an http or https URL like "http://functions:8000/statefun" (may contain {function.name})`)

	if kind == KindHTTPEndpointV1 {
		e.Transport = c.okhttpTransport(spec.get("timeouts"))
	} else {
		e.Transport = c.transport(spec.get("transport"))
	}
	e.MaxNumBatchRequests = c.maxNumBatchRequests(spec.get("maxNumBatchRequests"))
	c.bindFunctions(e, fns)
	if s, ok := c.urlTemplate(tmpl, e.Transport.Type); ok {
		e.URLPathTemplate = s
		if e.Transport.TLS != (TLS{}) && !strings.EqualFold(scheme(s), "https") {
			tf := spec.get("transport")
			c.warnf(tf.key, tf.path, "the TLS files are not used: the endpoint URL is not https")
		}
	}
	return e
}

// bindFunctions checks the functions pattern and that no earlier endpoint
// binds the same type or namespace.
func (c *component) bindFunctions(e *Endpoint, f field) {
	s, ok := c.str(f, functionsWant)
	if !ok {
		return
	}
	e.Functions = s
	parts := strings.Split(s, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		c.errorf(f.node, f.path, "%q is not a binding; want %s", s, functionsWant)
		return
	}
	ns, name := parts[0], parts[1]
	switch {
	case strings.Contains(ns, "*"):
		c.errorf(f.node, f.path, "%q: only the name can be a wildcard; want %s", s, functionsWant)
		return
	case name == "*":
		if functions.ValidateFunctionType(functions.TypeName(ns+"/x")) != nil {
			c.errorf(f.node, f.path, "%q: the namespace may use only letters, digits, '.', '_' and '-'", s)
			return
		}
		e.Namespace = ns
		if first, dup := c.p.namespace[ns]; dup {
			c.errorf(f.node, f.path, "namespace %s/* is already bound (%s); bind it once", ns, where(first))
			return
		}
		c.p.namespace[ns] = c.pos(f.node)
	case strings.Contains(name, "*"):
		c.errorf(f.node, f.path, "%q: the wildcard must be the whole name, as in %q", s, ns+"/*")
		return
	default:
		t := functions.TypeName(s)
		if err := functions.ValidateFunctionType(t); err != nil {
			c.errorf(f.node, f.path, "%q is not a function type; it may use only letters, digits, '.', '_' and '-' around the '/'", s)
			return
		}
		e.Namespace, e.Type = ns, t
		if first, dup := c.p.exact[t]; dup {
			c.errorf(f.node, f.path, "function type %s is already bound (%s); bind it once", t, where(first))
			return
		}
		c.p.exact[t] = c.pos(f.node)
	}
}

// where describes an earlier position for "already ..." messages.
func where(p Position) string {
	return "document " + strconv.Itoa(p.Document) + ", line " + strconv.Itoa(p.Line)
}

func scheme(s string) string {
	if i := strings.Index(s, "://"); i > 0 {
		return s[:i]
	}
	return ""
}

// urlTemplate checks the URL template as StateFun uses it: "{function.name}"
// is replaced by the function's name and the result must be an http or
// https URL, or an http+unix/https+unix URL for the okhttp transport.
func (c *component) urlTemplate(f field, transport TransportType) (string, bool) {
	s, ok := c.str(f, "an http or https URL")
	if !ok {
		return "", false
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		c.errorf(f.node, f.path, "%q contains white space; want an http or https URL", s)
		return "", false
	}
	sample := strings.ReplaceAll(s, functionNamePlaceholder, "name")
	if strings.ContainsAny(sample, "{}") {
		c.errorf(f.node, f.path, "%q: the only placeholder is {function.name} (the name part of the function type)", s)
		return "", false
	}
	u, err := url.Parse(sample)
	if err != nil {
		c.errorf(f.node, f.path, "%q is not a URL: %v", s, unwrapURLError(err))
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" || u.Hostname() == "" {
			c.errorf(f.node, f.path, "%q has no host; want a URL like \"http://functions:8000/statefun\"", s)
			return "", false
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				c.errorf(f.node, f.path, "%q: port %s; want a number from 1 to 65535", s, p)
				return "", false
			}
		}
	case "http+unix", "https+unix":
		if transport != TransportOkHTTP {
			c.errorf(f.node, f.path, "%q: unix socket URLs work only with the okhttp transport, as in StateFun (kind %s, or transport.type %s)", s, KindHTTPEndpointV1, TransportOkHTTP)
			return "", false
		}
		if _, _, ok := UnixSocket(sample); !ok {
			c.errorf(f.node, f.path, "%q: a unix socket URL names the socket file as a path segment ending in .sock, like \"http+unix:///run/functions.sock/statefun\"", s)
			return "", false
		}
	case "":
		c.errorf(f.node, f.path, "%q is not a URL; want an http or https URL like \"http://functions:8000/statefun\"", s)
		return "", false
	default:
		if u.Opaque != "" && !strings.HasPrefix(u.Opaque, "/") {
			c.errorf(f.node, f.path, "%q is not an http or https URL; did you mean %q?", s, "http://"+s)
		} else {
			c.errorf(f.node, f.path, "%q: scheme %q; want http or https", s, u.Scheme)
		}
		return "", false
	}
	return s, true
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// UnixSocket splits an http+unix or https+unix URL, as StateFun's okhttp
// transport does, into the socket file (the path up to the first segment
// ending in ".sock") and the HTTP request path (the rest, or "/"). ok is
// false for any other URL.
func UnixSocket(rawURL string) (socket, path string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", false
	}
	if s := strings.ToLower(u.Scheme); s != "http+unix" && s != "https+unix" {
		return "", "", false
	}
	var segs []string
	for _, seg := range strings.Split(u.Path, "/") {
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	for i, seg := range segs {
		if strings.HasSuffix(seg, ".sock") {
			return "/" + strings.Join(segs[:i+1], "/"), "/" + strings.Join(segs[i+1:], "/"), true
		}
	}
	return "", "", false
}

// joinAnd joins words as "a", "a and b" or "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
