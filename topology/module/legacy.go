package module

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// legacy reads the single-document format of StateFun 3.0:
//
//	version: "3.0"
//	module:
//	  meta: {type: remote}
//	  spec:
//	    endpoints: [{endpoint: {meta: {kind: http}, spec: {...}}}]
//	    ingresses: [{ingress: {meta: {type: ..., id: ...}, spec: {...}}}]
//	    egresses:  [{egress: {meta: {type: ..., id: ...}, spec: {...}}}]
//
// StateFun 3.1+ still reads it (JsonServiceLoader, LegacyRemoteModuleV30)
// by turning each entry into a kind/spec component, with the id of an
// ingress or egress moved from meta into the spec. Versions "1.0" and
// "2.0" are the formats of StateFun 2.x, which StateFun 3.x rejects and
// stateloop reads (statefun2.go); "3.1" is rejected (StateFun knows the
// name but has no reader for it).
func (p *parser) legacy(d *doc, root *yaml.Node) {
	top := d.mapping(field{node: root}, keySpec{keys: []string{"version", "module"}})
	vf := d.required(top, "version", `"3.0", or "2.0" and "1.0" for StateFun 2.x`)
	version, ok := d.str(vf, `"3.0", or "2.0" and "1.0" for StateFun 2.x`)
	if !ok {
		return
	}
	switch version {
	case "3.0":
		p.m.Legacy = true
	case "1.0", "2.0":
	case "3.1":
		d.errorf(vf.node, vf.path, "StateFun has no reader for version 3.1 files; write kind/spec documents without a version key")
		return
	default:
		d.errorf(vf.node, vf.path, "unknown module format version %q; the single-document formats are version \"3.0\" (StateFun 3.x) and \"2.0\" and \"1.0\" (StateFun 2.x), and newer files are kind/spec documents without a version", version)
		return
	}
	p.m.Version = version
	sections := []string{"endpoints", "ingresses", "egresses"}
	hints := map[string]string{
		"functions": `functions is a key of the StateFun 2.x formats (version "2.0"); version 3.0 has endpoints`,
		"routers":   `routers belong to the StateFun 2.x formats, and stateloop does not run them`,
	}
	if version != "3.0" {
		sections = []string{"functions", "ingresses", "egresses"}
		hints = map[string]string{
			"endpoints": `endpoints is a key of version 3.0; a StateFun 2.x file (version "` + version + `") declares each function under functions`,
			"routers":   "protobuf routers are not supported by stateloop; read the topic with an ingress of type " + string(KindRoutableKafkaIngress) + ", whose topics name their typeUrl and targets",
		}
	}
	mod := d.mapping(d.required(top, "module", "a mapping with meta and spec"), keySpec{keys: []string{"meta", "spec"}})
	meta := d.mapping(d.required(mod, "meta", "a mapping with type: remote"), keySpec{keys: []string{"type"}})
	tf := d.required(meta, "type", "remote")
	if t, ok := d.str(tf, "remote"); ok && !strings.EqualFold(t, "remote") {
		d.errorf(tf.node, tf.path, "unknown module type %q; want remote", t)
	}
	spec := d.mapping(d.required(mod, "spec", "a mapping with "+joinAnd(sections)), keySpec{keys: sections, hints: hints})
	if version != "3.0" {
		p.statefun2(d, spec, version)
		return
	}
	p.legacySection(d, spec.get("endpoints"), "endpoint", "kind")
	p.legacySection(d, spec.get("ingresses"), "ingress", "type")
	p.legacySection(d, spec.get("egresses"), "egress", "type")
}

// section reads the entries of one list of a single-document file: each
// entry is {<entry>: {meta: {...}, spec: {...}}}, meta with the keys
// metaKeys. read gets the meta mapping and the spec field of each entry
// (the spec may be absent: its absence is reported).
func (p *parser) section(d *doc, f field, entry string, metaKeys []string, read func(meta mapping, spec field)) {
	if !f.present() || isNull(f.node) {
		return
	}
	items, _ := d.list(f, fmt.Sprintf("a list of {%s: {meta, spec}}", entry))
	for _, it := range items {
		wrap := d.mapping(it, keySpec{keys: []string{entry}})
		body := d.mapping(d.required(wrap, entry, "a mapping with meta and spec"), keySpec{keys: []string{"meta", "spec"}})
		meta := d.mapping(d.required(body, "meta", "a mapping with "+strings.Join(metaKeys, " and ")), keySpec{keys: metaKeys})
		spec := d.required(body, "spec", "a mapping with the settings of the "+entry)
		read(meta, spec)
	}
}

// legacySection reads the entries of one list of the 3.0 format: each
// entry is {<entry>: {meta: {<kindKey>: ..., id: ...}, spec: {...}}}.
func (p *parser) legacySection(d *doc, f field, entry, kindKey string) {
	metaKeys := []string{kindKey, "id"}
	if entry == "endpoint" {
		metaKeys = []string{kindKey}
	}
	p.section(d, f, entry, metaKeys, func(meta mapping, spec field) {
		kf := d.required(meta, kindKey, "a kind like "+legacyExample[entry])
		var id *field
		if entry != "endpoint" {
			idf := d.required(meta, "id", "an "+entry+" id like \""+legacyIDExample[entry]+"\"")
			id = &idf
		}
		s, ok := d.str(kf, "a kind like "+legacyExample[entry])
		if !ok {
			return
		}
		kind, ok := d.resolveKind(kf, s, true)
		if !ok {
			return
		}
		if !strings.HasSuffix(string(kind), "/"+legacyKindSuffix[entry]) {
			d.errorf(kf.node, kf.path, "%s is not an %s kind", kind, entry)
			return
		}
		if !spec.present() || (id != nil && !id.present()) {
			return
		}
		p.component(&component{doc: &doc{p: p, index: d.index, kind: kind}, spec: spec, id: id}, kind)
	})
}

var legacyExample = map[string]string{
	"endpoint": "http",
	"ingress":  "io.statefun.kafka/ingress",
	"egress":   "io.statefun.kafka/egress",
}

var legacyKindSuffix = map[string]string{
	"endpoint": "http",
	"ingress":  "ingress",
	"egress":   "egress",
}

var legacyIDExample = map[string]string{
	"ingress": "com.example/orders",
	"egress":  "com.example/receipts",
}
