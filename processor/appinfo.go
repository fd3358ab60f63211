package processor

import (
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/wire"
)

// appInfo is what a stream thread publishes about the application in its
// consumer group membership (wire.AppInfo): the topology with the state
// its Go functions declare, which functions are remote, the instance and
// thread. `stateloop describe` reads it from the group's description.
func (p *Processor) appInfo(instance string, thread int) []byte {
	topo := p.topo
	info := wire.AppInfo{App: topo.App, Instance: instance, Thread: thread, Threads: p.cfg.threads,
		Partitions: topo.PartitionCount()}
	remote := func(fn functions.TypeName) bool { return p.cfg.remote != nil && p.cfg.remote(fn) != nil }
	for _, fn := range topo.Functions {
		f := wire.FunctionInfo{Type: string(fn), Remote: remote(fn)}
		infos, _ := driver.States(p.reg, fn)
		for _, s := range infos {
			si := wire.StateInfo{Name: s.Name, Type: string(s.TypeName)}
			if s.Expiration.Mode != functions.ExpireNever {
				si.Expires = s.Expiration.Mode.String() + " " + s.Expiration.After.String()
			}
			f.State = append(f.State, si)
		}
		info.Functions = append(info.Functions, f)
	}
	for _, ns := range topo.Namespaces {
		// a namespace is remote if its endpoint serves a type of it
		info.Namespaces = append(info.Namespaces, wire.NamespaceInfo{Namespace: ns, Remote: remote(functions.TypeName(ns + "/x"))})
	}
	for _, in := range topo.Ingresses {
		ii := wire.IngressInfo{Topic: string(in.Topic), ValueType: string(in.ValueType), Router: in.Router != nil}
		if in.Router == nil {
			for _, t := range in.Targets {
				ii.Targets = append(ii.Targets, string(t))
			}
		}
		info.Ingresses = append(info.Ingresses, ii)
	}
	for _, e := range topo.Egresses {
		ei := wire.EgressInfo{ID: string(e.ID), AnyTopic: e.AnyTopic}
		for _, t := range e.Topics {
			ei.Topics = append(ei.Topics, string(t))
		}
		info.Egresses = append(info.Egresses, ei)
	}
	return wire.AppendAppInfo(nil, info)
}
