package module

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// doc collects the problems of one YAML document; every check reports
// through it, so one pass finds everything.
type doc struct {
	p     *parser
	index int // 1-based document number
	kind  Kind
}

func (d *doc) pos(n *yaml.Node) Position {
	pos := Position{File: d.p.name, Document: d.index}
	if n != nil {
		pos.Line, pos.Column = n.Line, n.Column
	}
	return pos
}

func (d *doc) errorf(n *yaml.Node, path, format string, args ...any) {
	d.p.problems = append(d.p.problems, Problem{Position: d.pos(n), Kind: d.kind, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (d *doc) warnf(n *yaml.Node, path, format string, args ...any) {
	d.p.warnings = append(d.p.warnings, Problem{Position: d.pos(n), Kind: d.kind, Path: path, Message: fmt.Sprintf(format, args...)})
}

// resolve follows aliases to the anchored node. The chain is bounded
// because yaml.v3 only lets an alias name an anchor defined before it.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node holds, for "got ..." in messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return strconv.Quote(n.Value)
	case n.Kind == yaml.ScalarNode:
		return n.Value
	}
	return "something else"
}

// field is a value node and its key path.
type field struct {
	path string
	key  *yaml.Node // nil for list items and documents
	node *yaml.Node // resolved; nil when the key is absent
}

func (f field) present() bool { return f.node != nil }

func (f field) at(key string) string {
	if f.path == "" {
		return key
	}
	return f.path + "." + key
}

// mapping is a checked YAML mapping: its known keys, looked up by name.
type mapping struct {
	field
	values map[string]field
	// typos are the known keys that an unknown key was taken for; their
	// absence is not reported again.
	typos map[string]bool
}

// keySpec lists the keys a mapping may have. hints maps a misplaced or
// misspelt key to advice that beats a spelling suggestion.
type keySpec struct {
	keys  []string
	hints map[string]string
}

// mapping checks that f is a mapping with only known, unique keys. On a
// wrong type it reports the problem and returns an empty mapping, so
// callers carry on and find the next problem.
func (d *doc) mapping(f field, spec keySpec) mapping {
	m := mapping{field: f, values: make(map[string]field), typos: make(map[string]bool)}
	if f.node == nil {
		return m
	}
	if f.node.Kind != yaml.MappingNode {
		d.errorf(f.node, f.path, "want a mapping with the keys %s; got %s", strings.Join(spec.keys, ", "), describe(f.node))
		return m
	}
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(f.node.Content); i += 2 {
		k, v := resolve(f.node.Content[i]), resolve(f.node.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(f.node.Content[i], f.path, "keys must be plain names; got %s", describe(k))
			continue
		}
		path := f.at(k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path, "duplicate key; first set on line %d", first.Line)
			continue
		}
		seen[k.Value] = k
		if !contains(spec.keys, k.Value) {
			msg, typo := unknownKey(k.Value, spec)
			d.errorf(k, path, "%s", msg)
			if typo != "" {
				m.typos[typo] = true
			}
			continue
		}
		m.values[k.Value] = field{path: path, key: k, node: v}
	}
	return m
}

// unknownKey returns the message for an unknown key, and the known key it
// is probably a typo of.
func unknownKey(key string, spec keySpec) (msg, typo string) {
	if h, ok := spec.hints[key]; ok {
		return "unknown key; " + h, ""
	}
	if s := suggest(key, spec.keys); s != "" {
		return fmt.Sprintf("unknown key; did you mean %q?", s), s
	}
	return "unknown key; known keys are " + strings.Join(spec.keys, ", "), ""
}

// get returns the field for key; it is not present when the key is absent.
func (m mapping) get(key string) field {
	if f, ok := m.values[key]; ok {
		return f
	}
	return field{path: m.at(key)}
}

// required returns the field for key, reporting it as missing (at the
// mapping) when it is absent or null.
func (d *doc) required(m mapping, key, want string) field {
	f := m.get(key)
	if m.node == nil || m.node.Kind != yaml.MappingNode {
		return field{path: f.path} // the mapping itself was reported
	}
	if !f.present() {
		if !m.typos[key] { // else reported as a typo already
			d.errorf(m.node, f.path, "missing; %s", want)
		}
		return f
	}
	if isNull(f.node) {
		d.errorf(f.node, f.path, "empty; %s", want)
		return field{path: f.path}
	}
	return f
}

// str returns a scalar's text. Numbers and booleans are accepted as their
// text, as Jackson does for string fields upstream.
func (d *doc) str(f field, want string) (string, bool) {
	if !f.present() {
		return "", false
	}
	if isNull(f.node) {
		d.errorf(f.node, f.path, "empty; %s", want)
		return "", false
	}
	if f.node.Kind != yaml.ScalarNode {
		d.errorf(f.node, f.path, "want %s; got %s", want, describe(f.node))
		return "", false
	}
	return f.node.Value, true
}

// integer returns a scalar's value as an int64. A quoted number is
// accepted, as Jackson coerces it upstream.
func (d *doc) integer(f field, want string) (int64, bool) {
	if !f.present() {
		return 0, false
	}
	n := f.node
	if n.Kind == yaml.ScalarNode {
		var v int64
		switch n.Tag {
		case "!!int":
			if n.Decode(&v) == nil {
				return v, true
			}
		case "!!str":
			if v, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64); err == nil {
				return v, true
			}
		}
	}
	d.errorf(n, f.path, "want %s; got %s", want, describe(n))
	return 0, false
}

// list returns the items of a sequence.
func (d *doc) list(f field, want string) ([]field, bool) {
	if !f.present() {
		return nil, false
	}
	if f.node.Kind != yaml.SequenceNode {
		d.errorf(f.node, f.path, "want %s; got %s", want, describe(f.node))
		return nil, false
	}
	items := make([]field, len(f.node.Content))
	for i, n := range f.node.Content {
		items[i] = field{path: fmt.Sprintf("%s[%d]", f.path, i), node: resolve(n)}
	}
	return items, true
}

// singleKeyMaps reads StateFun's "map list": a list of mappings with one
// key each, like Kafka properties or specific offsets. It returns the
// entries in order, with their key and value nodes.
func (d *doc) singleKeyMaps(f field, example string) []keyValue {
	if !f.present() || isNull(f.node) {
		return nil
	}
	if f.node.Kind == yaml.MappingNode {
		d.errorf(f.node, f.path, "want a list of single-key mappings like \"- %s\"; StateFun does not accept a plain mapping here", example)
		return nil
	}
	items, ok := d.list(f, "a list of single-key mappings like \"- "+example+"\"")
	if !ok {
		return nil
	}
	var out []keyValue
	for _, it := range items {
		if it.node == nil || it.node.Kind != yaml.MappingNode || len(it.node.Content) != 2 {
			what := describe(it.node)
			if it.node != nil && it.node.Kind == yaml.MappingNode {
				what = fmt.Sprintf("a mapping with %d keys (StateFun reads only the first)", len(it.node.Content)/2)
			}
			d.errorf(it.node, it.path, "want one key and its value, like \"- %s\"; got %s", example, what)
			continue
		}
		k, v := resolve(it.node.Content[0]), resolve(it.node.Content[1])
		if k.Kind != yaml.ScalarNode || v == nil || v.Kind != yaml.ScalarNode {
			d.errorf(it.node, it.path, "want a name and a plain value, like \"- %s\"", example)
			continue
		}
		out = append(out, keyValue{path: it.path, key: k, value: v})
	}
	return out
}

type keyValue struct {
	path       string
	key, value *yaml.Node
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
