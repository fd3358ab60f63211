package module

import (
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stateloop/stateloop/functions"
)

// statefun2 reads the module spec of the single-document formats of
// StateFun 2.x: version "1.0" (StateFun 2.0) and "2.0" (StateFun 2.1 and
// 2.2), as StateFun 2.2's JsonModule reads them:
//
//	version: "2.0"
//	module:
//	  meta: {type: remote}
//	  spec:
//	    functions: [{function: {meta: {kind: http, type: ns/name}, spec: {endpoint, states, ...}}}]
//	    ingresses: [{ingress: {meta: {type: statefun.kafka.io/routable-protobuf-ingress, id: ...}, spec: {...}}}]
//	    egresses:  [{egress: {meta: {type: statefun.kafka.io/generic-egress, id: ...}, spec: {...}}}]
//
// Each function is an endpoint of its own, bound to exactly its type, that
// speaks the StateFun 2.x protocol ([Protocol2]) with the states the file
// declares. The two versions differ only in states: a list of names in
// "1.0", a list of {name, expireAfter, expireMode} in "2.0".
func (p *parser) statefun2(d *doc, spec mapping, version string) {
	p.section(d, spec.get("functions"), "function", []string{"kind", "type"}, func(meta mapping, sf field) {
		kf := d.required(meta, "kind", "http")
		tf := d.required(meta, "type", `a function type like "example/greeter"`)
		kindOK := false
		if k, ok := d.str(kf, "http"); ok {
			switch {
			case strings.EqualFold(k, "http"): // StateFun upper-cases it
				kindOK = true
			case strings.EqualFold(k, "grpc"):
				d.errorf(kf.node, kf.path, "grpc functions are not supported: stateloop calls remote functions over HTTP; want http")
			default:
				d.errorf(kf.node, kf.path, "unknown function kind %q; want http", k)
			}
		}
		c := &component{doc: &doc{p: p, index: d.index, kind: KindHTTPFunction}, spec: sf, v2: version}
		if e := c.function2(tf); e != nil && kindOK && sf.present() {
			p.m.Endpoints = append(p.m.Endpoints, e)
		}
	})
	p.section(d, spec.get("ingresses"), "ingress", []string{"type", "id"}, func(meta mapping, sf field) {
		if c := p.component2(d, meta, sf, "ingress", version); c != nil {
			if in := c.kafkaIngress(); in != nil {
				p.m.Ingresses = append(p.m.Ingresses, in)
			}
		}
	})
	p.section(d, spec.get("egresses"), "egress", []string{"type", "id"}, func(meta mapping, sf field) {
		if c := p.component2(d, meta, sf, "egress", version); c != nil {
			if e := c.kafkaEgress(); e != nil {
				p.m.Egresses = append(p.m.Egresses, e)
			}
		}
	})
}

// kinds2 are the ingress and egress types of StateFun 2.x, and what
// stateloop says about those it does not read.
var kinds2 = map[string]map[string]string{
	"ingress": {
		string(KindRoutableKafkaIngress):                "",
		"statefun.kafka.io/protobuf-ingress":            "needs a protobuf router (routers), which stateloop does not run; use " + string(KindRoutableKafkaIngress) + ", whose topics name their typeUrl and targets",
		"statefun.kinesis.io/routable-protobuf-ingress": "is not supported: stateloop reads Kafka only; use " + string(KindRoutableKafkaIngress),
		"statefun.kinesis.io/protobuf-ingress":          "is not supported: stateloop reads Kafka only; use " + string(KindRoutableKafkaIngress),
	},
	"egress": {
		string(KindGenericKafkaEgress):       "",
		"statefun.kinesis.io/generic-egress": "is not supported: stateloop writes Kafka only; use " + string(KindGenericKafkaEgress),
	},
}

// component2 checks the meta of an ingress or egress of a StateFun 2.x
// file and returns its component, nil if it cannot be read.
func (p *parser) component2(d *doc, meta mapping, spec field, entry, version string) *component {
	want := "a type like " + string(KindRoutableKafkaIngress)
	if entry == "egress" {
		want = "a type like " + string(KindGenericKafkaEgress)
	}
	tf := d.required(meta, "type", want)
	idf := d.required(meta, "id", "an "+entry+" id like \""+legacyIDExample[entry]+"\"")
	s, ok := d.str(tf, want)
	if !ok {
		return nil
	}
	why, known := kinds2[entry][s]
	switch {
	case known && why != "":
		d.errorf(tf.node, tf.path, "%s %s", s, why)
		return nil
	case !known:
		msg := "unknown " + entry + " type \"" + s + "\""
		if k, ok := legacyKinds[s]; ok {
			msg += "; it is a type of the StateFun 3.0 format (version \"3.0\"), whose " + entry + " is " + string(k)
		}
		if sug := suggest(s, []string{string(KindRoutableKafkaIngress), string(KindGenericKafkaEgress)}); sug != "" {
			msg += " (did you mean \"" + sug + "\"?)"
		}
		d.errorf(tf.node, tf.path, "%s; stateloop reads %s", msg, strings.TrimPrefix(want, "a type like "))
		return nil
	}
	if !spec.present() || !idf.present() {
		return nil
	}
	return &component{doc: &doc{p: p, index: d.index, kind: Kind(s)}, spec: spec, id: &idf, v2: version}
}

var function2Keys = keySpec{
	keys: []string{"endpoint", "states", "maxNumBatchRequests", "timeout", "connectTimeout", "readTimeout", "writeTimeout"},
	hints: map[string]string{
		"urlPathTemplate": "a StateFun 2.x function names its URL with endpoint",
		"functions":       "the function type goes in meta.type",
		"host":            "host and port are for grpc functions, which stateloop does not run; an http function has endpoint",
		"port":            "host and port are for grpc functions, which stateloop does not run; an http function has endpoint",
		"timeouts":        "a StateFun 2.x function has timeout, connectTimeout, readTimeout and writeTimeout directly under spec",
		"transport":       "a StateFun 2.x function has timeout, connectTimeout, readTimeout and writeTimeout directly under spec",
	},
}

// function2 reads the spec of a function of a StateFun 2.x file (StateFun
// 2.2's FunctionJsonEntity and HttpFunctionSpec): its type from typeField
// (meta.type), its endpoint URL, states, batch limit and OkHttp timeouts.
func (c *component) function2(typeField field) *Endpoint {
	e := &Endpoint{
		Pos: c.pos(c.spec.node), Kind: KindHTTPFunction, Protocol: Protocol2,
		MaxNumBatchRequests: DefaultMaxNumBatchRequests,
		Transport: Transport{
			Type:           TransportOkHTTP,
			CallTimeout:    DefaultOkHTTPCallTimeout,
			ConnectTimeout: DefaultOkHTTPConnectTimeout,
			ReadTimeout:    DefaultOkHTTPReadWriteTimeout,
			WriteTimeout:   DefaultOkHTTPReadWriteTimeout,
		},
	}
	if t, ok := c.functionType(typeField); ok {
		e.Functions, e.Namespace, e.Type = string(t), t.Namespace(), t
		if first, dup := c.p.exact[t]; dup {
			c.errorf(typeField.node, typeField.path, "function type %s is already declared (%s); declare it once", t, where(first))
		} else {
			c.p.exact[t] = c.pos(typeField.node)
		}
	}
	spec := c.mapping(c.spec, function2Keys)
	ef := c.required(spec, "endpoint", `the function's http or https URL, like "http://python-worker:8000/statefun"`)
	if s, ok := c.str(ef, "an http or https URL"); ok && strings.ContainsAny(s, "{}") {
		c.errorf(ef.node, ef.path, "%q: a StateFun 2.x endpoint is the function's URL as it is, with no placeholders", s)
	} else if s, ok := c.urlTemplate(ef, TransportOkHTTP); ok {
		e.URLPathTemplate = s
	}
	e.MaxNumBatchRequests = c.maxNumBatchRequests(spec.get("maxNumBatchRequests"))
	for _, t := range []struct {
		key  string
		dst  *time.Duration
		zero bool // 0 means no timeout of its own, as in OkHttp
	}{
		{"timeout", &e.Transport.CallTimeout, false},
		{"connectTimeout", &e.Transport.ConnectTimeout, false},
		{"readTimeout", &e.Transport.ReadTimeout, true},
		{"writeTimeout", &e.Transport.WriteTimeout, true},
	} {
		f := spec.get(t.key)
		if !f.present() {
			continue
		}
		if v, ok := c.duration(f); ok && v == 0 && !t.zero {
			c.errorf(f.node, f.path, "must be longer than 0")
		} else if ok {
			*t.dst = v
		}
	}
	e.States = c.states2(spec.get("states"))
	return e
}

// maxNumBatchRequests reads the batch limit of an endpoint or function:
// StateFun's default when absent, 0 for "no cap" (StateFun: any value
// <= 0).
func (c *component) maxNumBatchRequests(f field) int {
	if !f.present() {
		return DefaultMaxNumBatchRequests
	}
	v, ok := c.integer(f, "a whole number (0 or less for no cap)")
	switch {
	case !ok:
		return DefaultMaxNumBatchRequests
	case v > math.MaxInt32:
		c.errorf(f.node, f.path, "%d is too large; at most %d", v, math.MaxInt32)
		return DefaultMaxNumBatchRequests
	case v <= 0:
		return 0
	}
	return int(v)
}

var state2Keys = keySpec{
	keys: []string{"name", "expireAfter", "expireMode"},
	hints: map[string]string{
		"type":       "a StateFun 2.x state has no type: its values are protobuf Any messages",
		"expiration": "write expireAfter (a duration) and expireMode (after-invoke or after-write)",
	},
}

// states2 reads the declared states of a StateFun 2.x function: names in
// version "1.0", {name, expireAfter, expireMode} mappings in "2.0".
func (c *component) states2(f field) []State {
	if !f.present() || isNull(f.node) {
		return nil
	}
	want := `a list of states like "- name: seen_count"`
	if c.v2 == "1.0" {
		want = `a list of state names like "- seen_count"`
	}
	items, _ := c.list(f, want)
	var out []State
	seen := make(map[string]int)
	for _, it := range items {
		s := State{Pos: c.pos(it.node)}
		nf := it
		if c.v2 == "1.0" {
			if it.node.Kind == yaml.MappingNode {
				c.errorf(it.node, it.path, `version "1.0" declares states by name only, like "- seen_count"; for expireAfter write version: "2.0" and "- name: seen_count"`)
				continue
			}
		} else {
			if it.node != nil && it.node.Kind == yaml.ScalarNode && !isNull(it.node) {
				c.errorf(it.node, it.path, `version "2.0" declares each state as a mapping, like "- name: %s"; a list of names is version "1.0"`, it.node.Value)
				continue
			}
			m := c.mapping(it, state2Keys)
			nf = c.required(m, "name", "the state's name")
			s.Expiration = c.expiration2(m)
		}
		name, ok := c.str(nf, "the state's name")
		if !ok {
			continue
		}
		if name == "" {
			c.errorf(nf.node, nf.path, "empty; want the state's name")
			continue
		}
		if first, dup := seen[name]; dup {
			c.errorf(nf.node, nf.path, "state %q is declared twice (first on line %d); declare it once", name, first)
			continue
		}
		seen[name] = nf.node.Line
		s.Name = name
		out = append(out, s)
	}
	return out
}

// expiration2 reads expireAfter and expireMode as StateFun 2.2 does: no
// expireAfter (or 0, "disabled" in StateFun's documentation) means no
// expiration, whatever the mode; the mode defaults to after-invoke
// (expire after the last call that read or wrote the value, i.e. any call:
// every request carries every state).
func (c *component) expiration2(m mapping) functions.Expiration {
	af, mf := m.get("expireAfter"), m.get("expireMode")
	mode := functions.ExpireAfterCall
	if s, ok := c.str(mf, "after-invoke or after-write"); ok {
		switch s {
		case "after-invoke":
		case "after-write":
			mode = functions.ExpireAfterWrite
		default:
			msg := "unknown expire mode \"" + s + "\"; want after-invoke or after-write"
			if sug := suggest(s, []string{"after-invoke", "after-write"}); sug != "" {
				msg += " (did you mean \"" + sug + "\"?)"
			}
			c.errorf(mf.node, mf.path, "%s", msg)
		}
		if !af.present() {
			c.warnf(mf.key, mf.path, "ignored: without expireAfter the state does not expire")
		}
	}
	after, ok := c.duration(af) // never negative
	if !ok || after == 0 {
		return functions.Expiration{}
	}
	return functions.Expiration{Mode: mode, After: after}
}
