package httpapi

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

// exactLagWindow bounds the records read to count a partition's lag
// exactly; a larger lag is reported in offsets.
const exactLagWindow = 1000

// consolePartitionsInfo is the body of GET /v1/console/partitions.
type consolePartitionsInfo struct {
	Group      string             `json:"group"`
	State      string             `json:"state"` // of the group: Stable, PreparingRebalance, Empty, ...
	Members    []consoleMember    `json:"members"`
	Partitions []consolePartition `json:"partitions"`
	Lag        int64              `json:"lag"` // the sum over the partitions
	Errors     []string           `json:"errors,omitempty"`
}

// consoleMember is one instance in the application's consumer group.
type consoleMember struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"` // static membership's group.instance.id
	ClientID   string             `json:"client_id"`
	Host       string             `json:"host"`
	Assignment map[string][]int32 `json:"assignment"` // topic -> partitions
}

// consolePartition is one partition the group consumes.
type consolePartition struct {
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
	// a lag above exactLagWindow offsets: those include commit markers and
	// aborted records.
	Lag      int64  `json:"lag"`
	LagExact bool   `json:"lag_exact"`
	Error    string `json:"error,omitempty"`
}

// consolePartitions answers the group's members, which member owns each
// consumed partition (from the group description), and the lag of each:
// committed group offset against the partition's last stable offset. The
// lag counts committed records, not offsets: a partition that ends with a
// transaction's commit marker, as the loop topic does, is caught up when
// the group's offset points at the marker.
func (s *Server) consolePartitions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	topo := s.cfg.Topology
	group := topo.App
	info := consolePartitionsInfo{Group: group, Members: []consoleMember{}, Partitions: []consolePartition{}}
	client, admin, err := s.consoleAdmin()
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}

	owners := make(map[topicPartition]*consoleMember)
	groups, err := admin.DescribeConsumerGroups([]string{group})
	switch {
	case err != nil:
		info.Errors = append(info.Errors, "describing consumer group "+group+": "+err.Error())
	case len(groups) == 0:
		info.Errors = append(info.Errors, "describing consumer group "+group+": no answer")
	case !errors.Is(groups[0].Err, sarama.ErrNoError):
		info.Errors = append(info.Errors, "describing consumer group "+group+": "+groups[0].Err.Error())
	default:
		info.State = groups[0].State
		for id, m := range groups[0].Members {
			cm := consoleMember{MemberID: id, ClientID: m.ClientId, Host: trimHost(m.ClientHost), Assignment: map[string][]int32{}}
			if m.GroupInstanceId != nil {
				cm.InstanceID = *m.GroupInstanceId
			}
			if a, err := m.GetMemberAssignment(); err != nil {
				info.Errors = append(info.Errors, "the assignment of member "+id+" does not decode: "+err.Error())
			} else if a != nil {
				for t, ps := range a.Topics {
					cm.Assignment[t] = slices.Sorted(slices.Values(ps))
				}
			}
			info.Members = append(info.Members, cm)
		}
		slices.SortFunc(info.Members, func(a, b consoleMember) int {
			return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.MemberID, b.MemberID))
		})
		for i := range info.Members {
			m := &info.Members[i]
			for t, ps := range m.Assignment {
				for _, p := range ps {
					owners[topicPartition{t, p}] = m
				}
			}
		}
	}

	consumed := consumedTopics(topo)
	existing, err := partitionCounts(client, consumed)
	if err != nil {
		info.Errors = append(info.Errors, err.Error())
		writeJSON(w, http.StatusOK, info)
		return
	}
	var parts []topicPartition
	asked := make(map[string][]int32)
	for _, t := range consumed {
		n, ok := existing[t]
		if !ok {
			info.Errors = append(info.Errors, "topic "+t+" does not exist")
			continue
		}
		for p := range n {
			parts = append(parts, topicPartition{t, p})
			asked[t] = append(asked[t], p)
		}
	}
	if len(parts) == 0 {
		writeJSON(w, http.StatusOK, info)
		return
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, asked)
	if err != nil {
		info.Errors = append(info.Errors, "committed offsets of group "+group+": "+err.Error())
	}
	ends := listEnds(client, parts)
	loop := string(topo.LoopTopic())
	for _, tp := range parts {
		cp := consolePartition{Topic: tp.topic, Kind: "ingress", Partition: tp.partition, Committed: -1}
		if tp.topic == loop {
			cp.Kind = "loop"
		}
		if m := owners[tp]; m != nil {
			cp.Owner, cp.ClientID, cp.Host = m.MemberID, m.ClientID, m.Host
		}
		if offsets != nil {
			if b := offsets.GetBlock(tp.topic, tp.partition); b != nil {
				if errors.Is(b.Err, sarama.ErrNoError) {
					cp.Committed = b.Offset
				} else {
					cp.Error = "committed offset: " + b.Err.Error()
				}
			}
		}
		e := ends[tp]
		if e.err != nil {
			cp.Error = e.err.Error()
			info.Partitions = append(info.Partitions, cp)
			continue
		}
		cp.Start, cp.LSO, cp.HWM = e.start, e.lso, e.hwm
		cp.Lag, cp.LagExact = 0, true
		from := max(cp.Committed, e.start)
		switch {
		case from >= e.lso:
		case e.lso-from > exactLagWindow:
			cp.Lag, cp.LagExact = e.lso-from, false
		default:
			var n int64
			_, err := kafkaread.ReadCommitted(ctx, client, tp.topic, tp.partition, from, e.lso, func(kafkaread.Record) error {
				n++
				return nil
			})
			if err != nil {
				cp.Lag, cp.LagExact = e.lso-from, false
				cp.Error = "counting the lag: " + err.Error()
			} else {
				cp.Lag = n
			}
		}
		info.Lag += cp.Lag
		info.Partitions = append(info.Partitions, cp)
	}
	writeJSON(w, http.StatusOK, info)
}
