package module

import (
	"math"
	"time"

	"gopkg.in/yaml.v3"
)

var asyncKeys = []string{"type", "call", "connect", "pool_ttl", "pool_size", "payload_max_bytes",
	"trust_cacerts", "client_cert", "client_key", "client_key_password", "timeouts"}

var asyncTransportKeys = keySpec{
	keys: asyncKeys,
	hints: map[string]string{
		"read":  "the async transport has no read timeout; it has call and connect",
		"write": "the async transport has no write timeout; it has call and connect",
	},
}

var okhttpTransportKeys = keySpec{
	keys: []string{"type", "timeouts"},
	hints: func() map[string]string {
		hints := make(map[string]string)
		for _, k := range asyncKeys[1 : len(asyncKeys)-1] { // not type, not timeouts
			hints[k] = k + " is a setting of the async transport; the okhttp transport takes only type and timeouts {call, connect, read, write}"
		}
		return hints
	}(),
}

var timeoutKeys = keySpec{keys: []string{"call", "connect", "read", "write"}}

// peekType returns the value of the type key of a mapping node, or "".
func peekType(n *yaml.Node) (string, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return "", nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k != nil && k.Kind == yaml.ScalarNode && k.Value == "type" && v != nil && v.Kind == yaml.ScalarNode && !isNull(v) {
			return v.Value, v
		}
	}
	return "", nil
}

// transport reads the transport of a v2 endpoint; absent, it is async with
// StateFun's defaults.
func (c *component) transport(f field) Transport {
	if !f.present() || isNull(f.node) {
		return asyncDefaults()
	}
	typ, typNode := peekType(f.node)
	switch TransportType(typ) {
	case "", TransportAsync:
		return c.asyncTransport(f)
	case TransportOkHTTP:
		m := c.mapping(f, okhttpTransportKeys)
		return c.okhttpTransport(m.get("timeouts"))
	default:
		msg := "unknown transport %q; want " + string(TransportAsync) + " (the default) or " + string(TransportOkHTTP)
		if s := suggest(typ, []string{string(TransportAsync), string(TransportOkHTTP)}); s != "" {
			msg += "; did you mean " + s + "?"
		}
		c.errorf(typNode, f.at("type"), msg, typ)
		return Transport{Type: TransportType(typ)}
	}
}

func asyncDefaults() Transport {
	return Transport{
		Type:            TransportAsync,
		CallTimeout:     DefaultAsyncCallTimeout,
		ConnectTimeout:  DefaultAsyncConnectTimeout,
		PoolTTL:         DefaultAsyncPoolTTL,
		PoolSize:        DefaultAsyncPoolSize,
		PayloadMaxBytes: DefaultAsyncPayloadMaxBytes,
	}
}

// asyncTransport reads io.statefun.transports.v1/async (StateFun's
// NettyRequestReplySpec).
func (c *component) asyncTransport(f field) Transport {
	t := asyncDefaults()
	m := c.mapping(f, asyncTransportKeys)
	c.str(m.get("type"), string(TransportAsync)+" or "+string(TransportOkHTTP)) // only to report a type that is not text
	if v, ok := c.positiveDuration(m.get("call")); ok {
		t.CallTimeout = v
	}
	if v, ok := c.positiveDuration(m.get("connect")); ok {
		t.ConnectTimeout = v
	}
	// The legacy timeouts block wins over call and connect, each with its
	// own defaults (1m, 10s), as in StateFun.
	if tf := m.get("timeouts"); tf.present() && !isNull(tf.node) {
		tm := c.mapping(tf, timeoutKeys)
		t.CallTimeout, t.ConnectTimeout = DefaultOkHTTPCallTimeout, DefaultOkHTTPConnectTimeout
		if v, ok := c.positiveDuration(tm.get("call")); ok {
			t.CallTimeout = v
		}
		if v, ok := c.positiveDuration(tm.get("connect")); ok {
			t.ConnectTimeout = v
		}
		for _, k := range []string{"call", "connect"} {
			if g := m.get(k); g.present() {
				c.warnf(g.key, g.path, "ignored: %s is set and wins, as in StateFun", tf.path)
			}
		}
		for _, k := range []string{"read", "write"} {
			if g := tm.get(k); g.present() {
				c.duration(g)
				c.warnf(g.key, g.path, "ignored: the async transport has no %s timeout", k)
			}
		}
	}
	if g := m.get("pool_ttl"); g.present() {
		if v, ok := c.duration(g); ok {
			t.PoolTTL = v
			// only when the file sets it: the default (15 s) is not the
			// user's choice, so there is nothing to tell them about
			c.warnf(g.key, g.path, "ignored: stateloop closes idle connections after 90 s")
		}
	}
	t.PoolSize = c.positiveInt(m.get("pool_size"), t.PoolSize, "the most connections")
	t.PayloadMaxBytes = c.positiveInt(m.get("payload_max_bytes"), t.PayloadMaxBytes, "the largest request or response in bytes")
	t.TLS = c.tls(m)
	return t
}

// positiveInt reads a Java int that must be at least 1.
func (c *component) positiveInt(f field, def int, what string) int {
	if !f.present() {
		return def
	}
	v, ok := c.integer(f, "a whole number, "+what)
	switch {
	case !ok:
	case v < 1:
		c.errorf(f.node, f.path, "%d: must be at least 1", v)
	case v > math.MaxInt32:
		c.errorf(f.node, f.path, "%d is too large; at most %d", v, math.MaxInt32)
	default:
		return int(v)
	}
	return def
}

// okhttpTransport reads the timeouts of the okhttp transport (StateFun's
// DefaultHttpRequestReplyClientSpec): each above zero, and connect, read
// and write no longer than call, defaults included.
func (c *component) okhttpTransport(f field) Transport {
	t := Transport{
		Type:           TransportOkHTTP,
		CallTimeout:    DefaultOkHTTPCallTimeout,
		ConnectTimeout: DefaultOkHTTPConnectTimeout,
		ReadTimeout:    DefaultOkHTTPReadWriteTimeout,
		WriteTimeout:   DefaultOkHTTPReadWriteTimeout,
	}
	if !f.present() || isNull(f.node) {
		return t
	}
	m := c.mapping(f, timeoutKeys)
	vals := []*time.Duration{&t.CallTimeout, &t.ConnectTimeout, &t.ReadTimeout, &t.WriteTimeout}
	valid := make([]bool, len(vals))
	for i, k := range timeoutKeys.keys {
		g := m.get(k)
		valid[i] = true
		if !g.present() {
			continue
		}
		v, ok := c.positiveDuration(g)
		valid[i] = ok
		if ok {
			*vals[i] = v
		}
	}
	if !valid[0] {
		return t
	}
	var defaults []string // timeouts left at a default that is longer than call
	for i, k := range timeoutKeys.keys[1:] {
		v := *vals[i+1]
		if !valid[i+1] || v <= t.CallTimeout {
			continue
		}
		if g := m.get(k); g.present() {
			c.errorf(g.node, g.path, "%s is longer than the call timeout %s; okhttp needs it no longer than call", v, t.CallTimeout)
		} else {
			defaults = append(defaults, k)
		}
	}
	if len(defaults) > 0 {
		call := m.get("call")
		noun := "timeout"
		if len(defaults) > 1 {
			noun = "timeouts"
		}
		c.errorf(call.node, call.path, "%s is shorter than the default %s %s (%s); okhttp needs connect, read and write no longer than call: raise call or set them too",
			t.CallTimeout, joinAnd(defaults), noun, DefaultOkHTTPReadWriteTimeout)
	}
	return t
}
