package embedded

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionTick is how often the session keeper looks at a group that is
// completing a rebalance.
const sessionTick = 50 * time.Millisecond

// sessionKeeper works around two ways in which kfake's consumer group
// sessions differ from Kafka's, which together left a group stalled for
// good or for half a minute when a member died while it joined:
//
//  1. kfake starts the session timer of a member when it delivers the
//     member's JoinGroup answer and skips that when the member's
//     connection is gone (group.reply in kfake's groups.go). A member
//     killed while it waited for its JoinGroup answer stays in the group
//     with no session at all. If a living member leads the group through
//     SyncGroup, the group is stable with a member that never expires, and
//     the partitions the leader gave it have no consumer until the
//     membership changes (the reported case served 2 of 8 partitions for
//     good). Kafka schedules the session expiry of every member when a
//     join completes, whether the answer reaches it or not.
//  2. kfake lets the session of a member expire while the member waits for
//     its SyncGroup answer (the leader has not synced yet), removes it and
//     never answers the request; the client waits for its request timeout
//     (30 s in sarama) before it joins again. Kafka keeps a member that
//     waits for its SyncGroup answer alive. So when the leader of a
//     generation was the dead member, the living ones waited half a
//     minute.
//
// The keeper watches each generation of each group from its first
// SyncGroup request until the group is stable: while the group completes
// its rebalance it sends a heartbeat every sessionTick on behalf of each
// member that sent its SyncGroup (the member waits for its answer: Kafka
// keeps it alive), and one heartbeat on behalf of each other member, which
// starts kfake's session timer for a member that has none; once the group
// is stable it sends one heartbeat for every member it has not sent one
// yet. A dead member then expires a session timeout later and the group
// rebalances without it, as on Kafka; a living member heartbeats on its own
// anyway, so the extra heartbeats only renew its session.
type sessionKeeper struct {
	client *rawClient
	logger *slog.Logger
	ctx    context.Context
	wg     sync.WaitGroup

	mu      sync.Mutex
	watched map[string]*generationWatch // by group
}

// generationWatch is the keeper's state for one generation of a group.
type generationWatch struct {
	gen    int32
	synced map[string]bool // members that sent their SyncGroup
}

// observeSync is a kfake control function for SyncGroup requests: it
// notes the member as waiting for its answer, starts watching the
// generation if it is new, and lets kfake handle the request.
func (k *sessionKeeper) observeSync(req kmsg.Request) (kmsg.Response, error, bool) {
	r, ok := req.(*kmsg.SyncGroupRequest)
	if !ok {
		return nil, nil, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.watched[r.Group]
	if w != nil && w.gen == r.Generation {
		w.synced[r.MemberID] = true
		return nil, nil, false
	}
	if w != nil && w.gen > r.Generation {
		return nil, nil, false // a late request of an older generation
	}
	w = &generationWatch{gen: r.Generation, synced: map[string]bool{r.MemberID: true}}
	k.watched[r.Group] = w
	k.wg.Add(1)
	go k.watch(r.Group, w)
	return nil, nil, false
}

// watch keeps the sessions of generation w of group until the group is
// stable or has moved on.
func (k *sessionKeeper) watch(group string, w *generationWatch) {
	defer k.wg.Done()
	touched := map[string]bool{}
	tick := time.NewTicker(sessionTick)
	defer tick.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-tick.C:
		}
		k.mu.Lock()
		current := k.watched[group] == w
		k.mu.Unlock()
		if !current {
			return
		}
		state, members, ok := k.describe(group)
		if !ok {
			continue
		}
		switch state {
		case "CompletingRebalance":
			for _, m := range members {
				k.mu.Lock()
				waiting := w.synced[m.MemberID]
				k.mu.Unlock()
				if waiting || !touched[m.MemberID] {
					touched[m.MemberID] = true
					if !k.heartbeat(group, w.gen, m) {
						return
					}
				}
			}
		case "Stable":
			for _, m := range members {
				if !touched[m.MemberID] && !k.heartbeat(group, w.gen, m) {
					return
				}
			}
			return
		default:
			// preparing the next rebalance, or empty: the next
			// generation's first SyncGroup starts a new watch
			return
		}
	}
}

// describe returns the state of group and its members.
func (k *sessionKeeper) describe(group string) (string, []kmsg.DescribeGroupsResponseGroupMember, bool) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	resp, err := k.client.request(k.ctx, req)
	if err != nil {
		k.logger.Debug("session keeper: describe group", "group", group, "err", err)
		return "", nil, false
	}
	groups := resp.(*kmsg.DescribeGroupsResponse).Groups
	if len(groups) != 1 || groups[0].ErrorCode != 0 {
		return "", nil, false
	}
	return groups[0].State, groups[0].Members, true
}

// heartbeat sends a heartbeat of generation gen on behalf of member m; it
// returns false when the generation is over.
func (k *sessionKeeper) heartbeat(group string, gen int32, m kmsg.DescribeGroupsResponseGroupMember) bool {
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = group, gen, m.MemberID, m.InstanceID
	resp, err := k.client.request(k.ctx, hb)
	if err != nil {
		k.logger.Debug("session keeper: heartbeat", "group", group, "member", m.MemberID, "err", err)
		return true
	}
	code := resp.(*kmsg.HeartbeatResponse).ErrorCode
	k.logger.Log(k.ctx, slog.LevelDebug-4, "session keeper: heartbeat", "group", group, "generation", gen, "member", m.MemberID,
		"err", kerr.ErrorForCode(code))
	return code != kerr.IllegalGeneration.Code
}
