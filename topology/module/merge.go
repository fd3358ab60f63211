package module

import (
	"fmt"
	"strings"
)

// Merge combines modules parsed from several files into one, as StateFun
// loads every module.yaml it finds into one application. This is how
// functions of StateFun 2.x (a version "2.0" file) and StateFun 3.x (a
// kind/spec file) run in one application: each endpoint keeps the
// [Protocol] of its file.
//
// The result has the endpoints, ingresses, egresses and warnings of all
// modules in order, File the file names joined by ", ", and Version and
// Legacy only when every module agrees. Merge returns an *[Error] listing
// every conflict between the files, each at its second place with the
// first: a function type or namespace bound twice, an ingress or egress
// id used twice, a topic read by two ingresses, two playground ingresses
// or egresses. A single module is returned as it is.
func Merge(mods ...*Module) (*Module, error) {
	if len(mods) == 1 {
		return mods[0], nil
	}
	out := &Module{Version: mods[0].Version, Legacy: mods[0].Legacy}
	var (
		names    []string
		problems []Problem
		bound    = make(map[string]Position) // "type ns/name" or "namespace ns"
		ids      = make(map[string]Position) // "ingress ns/name" or "egress ns/name"
		topics   = make(map[string]Position)
	)
	conflict := func(seen map[string]Position, key string, at Position, format string, args ...any) {
		if first, dup := seen[key]; dup {
			problems = append(problems, Problem{Position: at, Message: fmt.Sprintf(format, args...) + " (first at " + first.String() + ")"})
			return
		}
		seen[key] = at
	}
	for _, m := range mods {
		names = append(names, m.File)
		if m.Version != out.Version || m.Legacy != out.Legacy {
			out.Version, out.Legacy = "", false
		}
		for _, e := range m.Endpoints {
			if e.Type != "" {
				conflict(bound, "type "+string(e.Type), e.Pos, "function type %s is bound in two module files; bind it once", e.Type)
			} else {
				conflict(bound, "namespace "+e.Namespace, e.Pos, "namespace %s/* is bound in two module files; bind it once", e.Namespace)
			}
		}
		for _, in := range m.Ingresses {
			conflict(ids, "ingress "+string(in.ID), in.Pos, "ingress id %s is used in two module files; ids must be unique", in.ID)
			for _, t := range in.Topics {
				conflict(topics, string(t.Topic), t.Pos, "topic %s is read by ingresses of two module files; stateloop routes each topic once", t.Topic)
			}
		}
		for _, e := range m.Egresses {
			conflict(ids, "egress "+string(e.ID), e.Pos, "egress id %s is used in two module files; ids must be unique", e.ID)
		}
		if m.PlaygroundIngress != nil {
			if out.PlaygroundIngress != nil {
				problems = append(problems, Problem{Position: m.PlaygroundIngress.Pos, Message: "a second playground ingress; an application has at most one"})
			}
			out.PlaygroundIngress = m.PlaygroundIngress
		}
		if m.PlaygroundEgress != nil {
			if out.PlaygroundEgress != nil {
				problems = append(problems, Problem{Position: m.PlaygroundEgress.Pos, Message: "a second playground egress; an application has at most one"})
			}
			out.PlaygroundEgress = m.PlaygroundEgress
		}
		out.Endpoints = append(out.Endpoints, m.Endpoints...)
		out.Ingresses = append(out.Ingresses, m.Ingresses...)
		out.Egresses = append(out.Egresses, m.Egresses...)
		out.Warnings = append(out.Warnings, m.Warnings...)
	}
	out.File = strings.Join(names, ", ")
	if len(problems) > 0 {
		return nil, &Error{File: out.File, Problems: problems}
	}
	return out, nil
}
