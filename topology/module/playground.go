package module

import (
	"strings"

	"github.com/stateloop/stateloop/functions"
)

// The fixed ids of the playground ingress and egress.
const (
	PlaygroundIngressID functions.TypeName = "io.statefun.playground/ingress"
	PlaygroundEgressID  functions.TypeName = "io.statefun.playground/egress"
)

// playgroundIngress reads io.statefun.playground.v1/ingress {port}.
func (c *component) playgroundIngress() {
	m := c.mapping(c.spec, keySpec{keys: []string{"port"}})
	in := &PlaygroundIngress{Pos: c.pos(c.spec.node)}
	pf := c.required(m, "port", "the HTTP port, like 8090")
	in.Port = c.port(pf)
	if c.registerPlayground(c.p.ingress, PlaygroundIngressID, "ingress") {
		c.p.m.PlaygroundIngress = in
		if e := c.p.m.PlaygroundEgress; e != nil && in.Port != 0 && in.Port == e.Port {
			c.errorf(pf.node, pf.path, "port %d is also the playground egress's port; use two ports", in.Port)
		}
	}
}

// playgroundEgress reads io.statefun.playground.v1/egress {port, topics}.
func (c *component) playgroundEgress() {
	m := c.mapping(c.spec, keySpec{keys: []string{"port", "topics"}})
	e := &PlaygroundEgress{Pos: c.pos(c.spec.node)}
	pf := c.required(m, "port", "the HTTP port, like 8091")
	e.Port = c.port(pf)
	tf := c.required(m, "topics", `a list of topic names like "greetings"`)
	items, _ := c.list(tf, `a list of topic names like "greetings"`)
	seen := make(map[string]bool)
	for _, it := range items {
		s, ok := c.str(it, "a topic name")
		switch {
		case !ok:
		case s == "" || strings.ContainsAny(s, "/ "):
			c.errorf(it.node, it.path, "%q: a topic name is one URL path segment, like \"greetings\"", s)
		case seen[s]:
			c.errorf(it.node, it.path, "topic %s is listed twice", s)
		default:
			seen[s] = true
			e.Topics = append(e.Topics, s)
		}
	}
	if c.registerPlayground(c.p.egress, PlaygroundEgressID, "egress") {
		c.p.m.PlaygroundEgress = e
		if in := c.p.m.PlaygroundIngress; in != nil && e.Port != 0 && in.Port == e.Port {
			c.errorf(pf.node, pf.path, "port %d is also the playground ingress's port; use two ports", e.Port)
		}
	}
}

// registerPlayground reports a second playground ingress or egress; their
// ids are fixed, so StateFun rejects a second one as a duplicate id.
func (c *component) registerPlayground(seen map[functions.TypeName]Position, id functions.TypeName, what string) bool {
	if first, dup := seen[id]; dup {
		c.errorf(c.spec.node, "", "a second playground %s; there can be one (the first is in %s)", what, where(first))
		return false
	}
	seen[id] = c.pos(c.spec.node)
	return true
}

func (c *component) port(f field) int {
	v, ok := c.integer(f, "a port number from 1 to 65535")
	if !ok {
		return 0
	}
	if v < 1 || v > 65535 {
		c.errorf(f.node, f.path, "%d; want a port number from 1 to 65535", v)
		return 0
	}
	return int(v)
}
