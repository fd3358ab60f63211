package ops

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// exactLagWindow bounds the records read to count a partition's lag
// exactly; a larger lag is reported in offsets.
const exactLagWindow = 1000

// Description is a running application as Kafka shows it: its consumer
// group (the instances and what each publishes about the application,
// wire.AppInfo), its function types (the table topics that exist and the
// types the instances run), and the partitions it consumes with their
// owners and lag.
type Description struct {
	App        string `json:"app"`
	Partitions int32  `json:"partitions"` // of the loop topic and the tables
	Group      string `json:"group"`
	// State is the group's: Stable, PreparingRebalance, Empty (no
	// instance runs), ...
	State      string               `json:"state"`
	Members    []Member             `json:"members"`
	Functions  []Function           `json:"functions"`
	Namespaces []wire.NamespaceInfo `json:"namespaces"`
	Ingresses  []wire.IngressInfo   `json:"ingresses"`
	Egresses   []wire.EgressInfo    `json:"egresses"`
	Consumed   []Partition          `json:"consumed"`
	Lag        int64                `json:"lag"` // the sum over Consumed
	// Errors are what could not be read; the rest is still there.
	Errors []string `json:"errors,omitempty"`
}

// Member is one stream thread of an instance, a member of the group.
type Member struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"` // its group.instance.id
	ClientID   string             `json:"client_id"`
	Host       string             `json:"host"`
	Assignment map[string][]int32 `json:"assignment"` // topic -> partitions
	// Info is what it publishes about the application (nil if nothing:
	// the group is rebalancing, or the member is not stateloop).
	Info *wire.AppInfo `json:"info,omitempty"`
}

// Function is a function type of the application.
type Function struct {
	Type        string `json:"type"`
	Table       string `json:"table"`
	TableExists bool   `json:"table_exists"`
	// Listed: a type of the application's topology (an instance says
	// so); else a type of a namespace it serves, known by its table.
	Listed    bool             `json:"listed"`
	Remote    bool             `json:"remote,omitempty"`
	State     []wire.StateInfo `json:"state,omitempty"`
	Ingresses []string         `json:"ingresses,omitempty"` // topics whose records are sent to it
}

// Partition is one partition the group consumes.
type Partition struct {
	Topic     string `json:"topic"`
	Kind      string `json:"kind"` // "loop" or "ingress"
	Partition int32  `json:"partition"`
	Owner     string `json:"owner,omitempty"` // member id; empty while unassigned
	ClientID  string `json:"client_id,omitempty"`
	Host      string `json:"host,omitempty"`
	// Committed is the group's committed offset, -1 if none.
	Committed int64 `json:"committed"`
	Start     int64 `json:"start"`
	LSO       int64 `json:"lso"`
	HWM       int64 `json:"hwm"`
	// Lag counts the committed records from Committed (else Start) to the
	// LSO. LagExact is false when it is that many offsets instead, as for
	// a lag above 1,000 offsets: those include commit markers and aborted
	// records.
	Lag      int64  `json:"lag"`
	LagExact bool   `json:"lag_exact"`
	Error    string `json:"error,omitempty"`
}

// Describe describes the application from Kafka: the group's description
// and committed offsets, the topics, and the partitions' ends. What cannot
// be read is in Errors; Describe fails only when Kafka cannot be asked at
// all.
func (c *Client) Describe(ctx context.Context) (Description, error) {
	topo := c.topo
	d := Description{App: topo.App, Partitions: topo.PartitionCount(), Group: topo.App,
		Members: []Member{}, Functions: []Function{}, Consumed: []Partition{}}
	admin, err := sarama.NewClusterAdminFromClient(c.reader)
	if err != nil {
		return d, err
	}
	// closing admin would close the reader, which is the caller's or Close's
	owners := d.members(admin)

	// the function types: those the instances run, those with tables
	counts, err := kafkaread.PartitionCounts(c.reader, nil)
	if err != nil {
		return d, err
	}
	var info *wire.AppInfo
	for _, m := range d.Members {
		if m.Info != nil {
			info = m.Info
			break
		}
	}
	fns := map[string]*Function{}
	add := func(fn functions.TypeName) *Function {
		f := fns[string(fn)]
		if f == nil {
			table := string(topo.TableTopic(fn))
			_, exists := counts[table]
			f = &Function{Type: string(fn), Table: table, TableExists: exists}
			fns[string(fn)] = f
		}
		return f
	}
	if info != nil {
		d.Namespaces, d.Ingresses, d.Egresses = info.Namespaces, info.Ingresses, info.Egresses
		for _, fi := range info.Functions {
			f := add(functions.TypeName(fi.Type))
			f.Listed, f.Remote, f.State = true, fi.Remote, fi.State
		}
		for _, in := range info.Ingresses {
			for _, t := range in.Targets {
				f := add(functions.TypeName(t))
				f.Ingresses = append(f.Ingresses, in.Topic)
			}
		}
	}
	for t := range counts {
		if fn, ok := topo.TableFunction(t); ok {
			add(fn)
		}
	}
	for _, f := range fns {
		d.Functions = append(d.Functions, *f)
	}
	slices.SortFunc(d.Functions, func(a, b Function) int { return cmp.Compare(a.Type, b.Type) })
	if d.Namespaces == nil {
		d.Namespaces = []wire.NamespaceInfo{}
	}
	if d.Ingresses == nil {
		d.Ingresses = []wire.IngressInfo{}
	}
	if d.Egresses == nil {
		d.Egresses = []wire.EgressInfo{}
	}

	// the partitions it consumes: the loop topic and the ingresses (of the
	// topology, of the instances, and any the group has offsets of)
	consumed := []string{string(topo.LoopTopic())}
	addTopic := func(t string) {
		if !slices.Contains(consumed, t) {
			consumed = append(consumed, t)
		}
	}
	for _, in := range topo.Ingresses {
		addTopic(string(in.Topic))
	}
	for _, in := range d.Ingresses {
		addTopic(in.Topic)
	}
	committed, err := admin.ListConsumerGroupOffsets(d.Group, nil)
	if err != nil {
		d.Errors = append(d.Errors, "committed offsets of group "+d.Group+": "+err.Error())
	} else {
		var more []string
		for t := range committed.Blocks {
			more = append(more, t)
		}
		slices.Sort(more)
		for _, t := range more {
			addTopic(t)
		}
	}
	d.partitions(ctx, c.reader, committed, consumed, counts, owners)
	return d, nil
}

// members reads the group's description into d and returns the owner of
// each partition the group has assigned.
func (d *Description) members(admin sarama.ClusterAdmin) map[kafkaread.TopicPartition]*Member {
	owners := make(map[kafkaread.TopicPartition]*Member)
	groups, err := admin.DescribeConsumerGroups([]string{d.Group})
	switch {
	case err != nil:
		d.Errors = append(d.Errors, "describing consumer group "+d.Group+": "+err.Error())
		return owners
	case len(groups) == 0:
		d.Errors = append(d.Errors, "describing consumer group "+d.Group+": no answer")
		return owners
	case !errors.Is(groups[0].Err, sarama.ErrNoError):
		d.Errors = append(d.Errors, "describing consumer group "+d.Group+": "+groups[0].Err.Error())
		return owners
	}
	d.State = groups[0].State
	for id, m := range groups[0].Members {
		cm := Member{MemberID: id, ClientID: m.ClientId, Host: strings.TrimPrefix(m.ClientHost, "/"), Assignment: map[string][]int32{}}
		if m.GroupInstanceId != nil {
			cm.InstanceID = *m.GroupInstanceId
		}
		if a, err := m.GetMemberAssignment(); err != nil {
			d.Errors = append(d.Errors, "the assignment of member "+id+" does not decode: "+err.Error())
		} else if a != nil {
			for t, ps := range a.Topics {
				cm.Assignment[t] = slices.Sorted(slices.Values(ps))
			}
		}
		if meta, err := m.GetMemberMetadata(); err == nil && meta != nil {
			info, ok, err := wire.DecodeAppInfo(meta.UserData)
			switch {
			case err != nil:
				d.Errors = append(d.Errors, "member "+id+": "+err.Error())
			case ok:
				cm.Info = &info
			}
		}
		d.Members = append(d.Members, cm)
	}
	slices.SortFunc(d.Members, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.InstanceID, b.InstanceID), cmp.Compare(a.MemberID, b.MemberID))
	})
	for i := range d.Members {
		m := &d.Members[i]
		for t, ps := range m.Assignment {
			for _, p := range ps {
				owners[kafkaread.TopicPartition{Topic: t, Partition: p}] = m
			}
		}
	}
	return owners
}

// partitions reads the ends and lag of the consumed topics' partitions
// into d. The lag counts committed records, not offsets: a partition that
// ends with a transaction's commit marker, as the loop topic does, is
// caught up when the group's offset points at the marker.
func (d *Description) partitions(ctx context.Context, client sarama.Client, committed *sarama.OffsetFetchResponse,
	consumed []string, counts map[string]int32, owners map[kafkaread.TopicPartition]*Member) {
	var parts []kafkaread.TopicPartition
	for _, t := range consumed {
		n, ok := counts[t]
		if !ok {
			d.Errors = append(d.Errors, "topic "+t+" does not exist")
			continue
		}
		for p := range n {
			parts = append(parts, kafkaread.TopicPartition{Topic: t, Partition: p})
		}
	}
	ends := kafkaread.ListEnds(client, parts)
	loop := consumed[0]
	for _, tp := range parts {
		cp := Partition{Topic: tp.Topic, Kind: "ingress", Partition: tp.Partition, Committed: -1}
		if tp.Topic == loop {
			cp.Kind = "loop"
		}
		if m := owners[tp]; m != nil {
			cp.Owner, cp.ClientID, cp.Host = m.MemberID, m.ClientID, m.Host
		}
		if committed != nil {
			if b := committed.GetBlock(tp.Topic, tp.Partition); b != nil {
				if errors.Is(b.Err, sarama.ErrNoError) {
					cp.Committed = b.Offset
				} else {
					cp.Error = "committed offset: " + b.Err.Error()
				}
			}
		}
		e := ends[tp]
		if e.Err != nil {
			cp.Error = e.Err.Error()
			d.Consumed = append(d.Consumed, cp)
			continue
		}
		cp.Start, cp.LSO, cp.HWM = e.Start, e.LSO, e.HWM
		cp.Lag, cp.LagExact = 0, true
		from := max(cp.Committed, e.Start)
		switch {
		case from >= e.LSO:
		case e.LSO-from > exactLagWindow:
			cp.Lag, cp.LagExact = e.LSO-from, false
		default:
			var n int64
			_, err := kafkaread.ReadCommitted(ctx, client, tp.Topic, tp.Partition, from, e.LSO, func(kafkaread.Record) error {
				n++
				return nil
			})
			if err != nil {
				cp.Lag, cp.LagExact = e.LSO-from, false
				cp.Error = "counting the lag: " + err.Error()
			} else {
				cp.Lag = n
			}
		}
		d.Lag += cp.Lag
		d.Consumed = append(d.Consumed, cp)
	}
}
