package module

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stateloop/stateloop/functions"
)

// ParseFile reads and parses the module file at path; see [Parse]. Files
// the module names (TLS certificates and keys) are resolved against the
// directory of path.
//
// It returns an error wrapping the [os] error when the file cannot be read,
// and an *[Error] listing every problem of a file that can.
func ParseFile(path string) (*Module, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("module: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses and checks a StateFun 3.x module.yaml: YAML documents
// separated by "---", each a "kind" and a "spec", or the single-document
// format of StateFun 3.0 ("version: 3.0"). name is the file name used in
// messages; relative paths in the module (TLS files) are resolved against
// its directory, and those files must be readable.
//
// Parse never returns a partial module: when anything is wrong it returns
// nil and an *[Error] that lists every problem in file order, each with its
// line and column. Settings that are accepted but have no effect are listed
// in [Module.Warnings].
func Parse(name string, data []byte) (*Module, error) {
	p := &parser{
		name:      name,
		dir:       filepath.Dir(name),
		m:         &Module{File: name},
		exact:     make(map[functions.TypeName]Position),
		namespace: make(map[string]Position),
		ingress:   make(map[functions.TypeName]Position),
		egress:    make(map[functions.TypeName]Position),
		topics:    make(map[string]Position),
	}
	p.parse(data)
	if len(p.problems) > 0 {
		sortProblems(p.problems)
		return nil, &Error{File: name, Problems: p.problems}
	}
	sortProblems(p.warnings)
	p.m.Warnings = p.warnings
	return p.m, nil
}

type parser struct {
	name     string
	dir      string
	m        *Module
	problems []Problem
	warnings []Problem

	// What earlier documents declared, to find duplicates.
	exact     map[functions.TypeName]Position // exact function bindings
	namespace map[string]Position             // namespace bindings
	ingress   map[functions.TypeName]Position // ingress ids
	egress    map[functions.TypeName]Position // egress ids
	topics    map[string]Position             // ingress topics
}

func (p *parser) fileProblem(line int, format string, args ...any) {
	p.problems = append(p.problems, Problem{Position: Position{File: p.name, Line: line}, Message: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// readDocuments splits data into YAML documents. It reports a syntax error
// as a problem and returns the documents before it.
func (p *parser) readDocuments(data []byte) (docs []*yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on malformed input in the past; a module
		// file must never take the process down.
		if r := recover(); r != nil {
			p.fileProblem(0, "not valid YAML (the YAML parser failed: %v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			line := 0
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
			}
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			msg = strings.TrimPrefix(msg, "line "+strconv.Itoa(line)+": ")
			p.fileProblem(line, "not valid YAML: %s", msg)
			return docs
		}
		docs = append(docs, &n)
	}
}

func (p *parser) parse(data []byte) {
	docs := p.readDocuments(data)
	if len(p.problems) > 0 {
		return
	}
	var roots []*yaml.Node // nil for an empty document
	nonEmpty := 0
	for _, d := range docs {
		var root *yaml.Node
		if len(d.Content) > 0 && !isNull(d.Content[0]) {
			root = resolve(d.Content[0])
			nonEmpty++
		}
		roots = append(roots, root)
	}
	if nonEmpty == 0 {
		p.fileProblem(0, "no documents; want one or more documents with a kind and a spec, separated by ---")
		return
	}
	if nonEmpty == 1 {
		for i, root := range roots {
			if root != nil && hasKey(root, "version") && !hasKey(root, "kind") {
				p.legacy(&doc{p: p, index: i + 1}, root)
				return
			}
		}
	}
	for i, root := range roots {
		if root != nil {
			p.document(&doc{p: p, index: i + 1}, root)
		}
	}
}

func hasKey(n *yaml.Node, key string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return true
		}
	}
	return false
}

var documentKeys = keySpec{
	keys: []string{"kind", "spec"},
	hints: map[string]string{
		"version": `the single-document format ("version: 3.0" with a module key) must be the only document in the file; write kind/spec documents instead`,
		"module":  `the single-document format ("version: 3.0" with a module key) must be the only document in the file; write kind/spec documents instead`,
	},
}

// document checks one kind/spec document.
func (p *parser) document(d *doc, root *yaml.Node) {
	top := d.mapping(field{node: root}, documentKeys)
	kindField := d.required(top, "kind", "a kind like "+string(KindHTTPEndpointV2))
	spec := d.required(top, "spec", "a mapping with the settings of the kind")
	s, ok := d.str(kindField, "a kind like "+string(KindHTTPEndpointV2))
	if !ok {
		return
	}
	kind, ok := d.resolveKind(kindField, s, false)
	if !ok || !spec.present() {
		return
	}
	d.kind = kind
	p.component(&component{doc: d, spec: spec}, kind)
}

// component is one endpoint, ingress or egress: its spec, and in the 3.0
// format the id from its meta.
type component struct {
	*doc
	spec field
	id   *field // set by the single-document formats, where the id is not in the spec
	v2   string // the version of a StateFun 2.x file ("1.0" or "2.0"); "" otherwise
}

func (p *parser) component(c *component, kind Kind) {
	switch kind {
	case KindHTTPEndpointV2, KindHTTPEndpointV1:
		if e := c.endpoint(kind); e != nil {
			p.m.Endpoints = append(p.m.Endpoints, e)
		}
	case KindKafkaIngress:
		if in := c.kafkaIngress(); in != nil {
			p.m.Ingresses = append(p.m.Ingresses, in)
		}
	case KindKafkaEgress:
		if e := c.kafkaEgress(); e != nil {
			p.m.Egresses = append(p.m.Egresses, e)
		}
	case KindPlaygroundIngress:
		c.playgroundIngress()
	case KindPlaygroundEgress:
		c.playgroundEgress()
	}
}

// supportedKinds are the kinds stateloop reads, in the order error
// messages list them.
var supportedKinds = []Kind{
	KindHTTPEndpointV2, KindHTTPEndpointV1, KindKafkaIngress, KindKafkaEgress,
	KindPlaygroundIngress, KindPlaygroundEgress,
}

// legacyKinds are the kind names of the StateFun 3.0 format and what
// StateFun 3.1+ turns them into.
var legacyKinds = map[string]Kind{
	"http":                        KindHTTPEndpointV1,
	"io.statefun.kafka/ingress":   KindKafkaIngress,
	"io.statefun.kafka/egress":    KindKafkaEgress,
	"io.statefun.kinesis/ingress": KindKinesisIngress,
	"io.statefun.kinesis/egress":  KindKinesisEgress,
}

// v2Kinds are the ingress and egress types of the StateFun 2.x formats,
// which have no place in a kind/spec document.
var v2Kinds = map[string]Kind{
	"statefun.kafka.io/routable-protobuf-ingress":   KindKafkaIngress,
	"statefun.kafka.io/protobuf-ingress":            KindKafkaIngress,
	"statefun.kafka.io/generic-egress":              KindKafkaEgress,
	"statefun.kinesis.io/routable-protobuf-ingress": KindKinesisIngress,
	"statefun.kinesis.io/generic-egress":            KindKinesisEgress,
}

// resolveKind checks a kind name. legacy allows the short names of the
// 3.0 format.
func (d *doc) resolveKind(f field, s string, legacy bool) (Kind, bool) {
	k := Kind(s)
	if contains(kindStrings(supportedKinds), s) {
		return k, true
	}
	if lk, ok := legacyKinds[s]; ok {
		if legacy {
			return d.resolveKind(f, string(lk), false)
		}
		d.errorf(f.node, f.path, "%q is a kind name of the single-document 3.0 format; in a kind/spec document write %s", s, lk)
		return "", false
	}
	switch k {
	case KindKinesisIngress, KindKinesisEgress:
		d.errorf(f.node, f.path, "%s is not supported by stateloop: stateloop reads and writes Kafka only; use %s", s, strings.Replace(s, "kinesis", "kafka", 1))
		return "", false
	}
	if nk, ok := v2Kinds[s]; ok {
		d.errorf(f.node, f.path, "%s is a type of the StateFun 2.x formats, for the ingresses and egresses of a file with version: \"2.0\"; in a kind/spec document write %s", s, nk)
		return "", false
	}
	msg := fmt.Sprintf("unknown kind %q", s)
	if sug := suggest(s, kindStrings(supportedKinds)); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	d.errorf(f.node, f.path, "%s; stateloop reads %s", msg, strings.Join(kindStrings(supportedKinds), ", "))
	return "", false
}

func kindStrings(ks []Kind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}

// typeNameID checks an ingress or egress id: exactly one '/' between a
// namespace and a name, as StateFun's TypeName.parseFrom requires.
func (d *doc) typeNameID(f field, what, example string) (functions.TypeName, bool) {
	want := fmt.Sprintf("%s id like %q", what, example)
	s, ok := d.str(f, "an "+want)
	if !ok {
		return "", false
	}
	t, err := functions.ParseTypeName(s)
	if err != nil || strings.Count(s, "/") != 1 {
		d.errorf(f.node, f.path, "%q is not a type name; want an %s (namespace/name, one '/')", s, want)
		return "", false
	}
	return t, true
}

// functionType checks a function type used as a target.
func (d *doc) functionType(f field) (functions.TypeName, bool) {
	const want = `a function type like "com.example/greeter"`
	s, ok := d.str(f, want)
	if !ok {
		return "", false
	}
	t := functions.TypeName(s)
	if strings.Count(s, "/") != 1 {
		d.errorf(f.node, f.path, "%q is not a function type; want %s (namespace/name, one '/')", s, want)
		return "", false
	}
	if err := functions.ValidateFunctionType(t); err != nil {
		d.errorf(f.node, f.path, "%q is not a function type; want %s, with letters, digits, '.', '_' and '-' around the '/'", s, want)
		return "", false
	}
	return t, true
}

func (d *doc) duration(f field) (time.Duration, bool) {
	if !f.present() {
		return 0, false
	}
	n := f.node
	if n.Kind != yaml.ScalarNode || isNull(n) || (n.Tag != "!!str" && n.Tag != "!!int") {
		d.errorf(n, f.path, "want %s; got %s", durationFormat, describe(n))
		return 0, false
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, f.path, "%v; want %s", err, durationFormat)
		return 0, false
	}
	return v, true
}

// positive checks that a duration is set to more than zero.
func (d *doc) positiveDuration(f field) (time.Duration, bool) {
	v, ok := d.duration(f)
	if ok && v <= 0 {
		d.errorf(f.node, f.path, "must be longer than 0")
		return 0, false
	}
	return v, ok
}
