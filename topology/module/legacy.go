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
// ingress or egress moved from meta into the spec. Versions 1.0 and 2.0
// are rejected, and so is "3.1" (StateFun knows the name but has no reader
// for it).
func (p *parser) legacy(d *doc, root *yaml.Node) {
	top := d.mapping(field{node: root}, keySpec{keys: []string{"version", "module"}})
	vf := d.required(top, "version", `"3.0"`)
	version, ok := d.str(vf, `"3.0"`)
	if !ok {
		return
	}
	switch version {
	case "3.0":
	case "1.0", "2.0":
		d.errorf(vf.node, vf.path, "version %s is the StateFun %s module format, which StateFun 3.x no longer reads; write kind/spec documents (see docs/module-yaml.md)", version, strings.TrimSuffix(version, ".0")+".x")
		return
	case "3.1":
		d.errorf(vf.node, vf.path, "StateFun has no reader for version 3.1 files; write kind/spec documents without a version key")
		return
	default:
		d.errorf(vf.node, vf.path, "unknown module format version %q; the single-document format is version \"3.0\", and newer files are kind/spec documents without a version", version)
		return
	}
	mod := d.mapping(d.required(top, "module", "a mapping with meta and spec"), keySpec{keys: []string{"meta", "spec"}})
	meta := d.mapping(d.required(mod, "meta", "a mapping with type: remote"), keySpec{keys: []string{"type"}})
	tf := d.required(meta, "type", "remote")
	if t, ok := d.str(tf, "remote"); ok && !strings.EqualFold(t, "remote") {
		d.errorf(tf.node, tf.path, "unknown module type %q; want remote", t)
	}
	spec := d.mapping(d.required(mod, "spec", "a mapping with endpoints, ingresses and egresses"), keySpec{keys: []string{"endpoints", "ingresses", "egresses"}})
	p.legacySection(d, spec.get("endpoints"), "endpoint", "kind")
	p.legacySection(d, spec.get("ingresses"), "ingress", "type")
	p.legacySection(d, spec.get("egresses"), "egress", "type")
}

// legacySection reads the entries of one list of the 3.0 format: each
// entry is {<entry>: {meta: {<kindKey>: ..., id: ...}, spec: {...}}}.
func (p *parser) legacySection(d *doc, f field, entry, kindKey string) {
	if !f.present() || isNull(f.node) {
		return
	}
	items, _ := d.list(f, fmt.Sprintf("a list of {%s: {meta, spec}}", entry))
	for _, it := range items {
		wrap := d.mapping(it, keySpec{keys: []string{entry}})
		body := d.mapping(d.required(wrap, entry, "a mapping with meta and spec"), keySpec{keys: []string{"meta", "spec"}})
		metaKeys := []string{kindKey, "id"}
		if entry == "endpoint" {
			metaKeys = []string{kindKey}
		}
		meta := d.mapping(d.required(body, "meta", "a mapping with "+strings.Join(metaKeys, " and ")), keySpec{keys: metaKeys})
		spec := d.required(body, "spec", "a mapping with the settings of the kind")
		kf := d.required(meta, kindKey, "a kind like "+legacyExample[entry])
		var id *field
		if entry != "endpoint" {
			idf := d.required(meta, "id", "an "+entry+" id like \""+legacyIDExample[entry]+"\"")
			id = &idf
		}
		s, ok := d.str(kf, "a kind like "+legacyExample[entry])
		if !ok {
			continue
		}
		kind, ok := d.resolveKind(kf, s, true)
		if !ok {
			continue
		}
		if !strings.HasSuffix(string(kind), "/"+legacyKindSuffix[entry]) {
			d.errorf(kf.node, kf.path, "%s is not an %s kind", kind, entry)
			continue
		}
		if !spec.present() || (id != nil && !id.present()) {
			continue
		}
		p.component(&component{doc: &doc{p: p, index: d.index, kind: kind}, spec: spec, id: id}, kind)
	}
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
