package processor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/wire"
)

// assignorName is the name of the stateloop assignor in the group's
// protocol list.
const assignorName = "stateloop"

// assignor is the consumer group's partition assignor (a sarama
// BalanceStrategy), one per stream thread. Its plan keeps the partitions
// co-partitioned: partition p of every subscribed topic goes to the owner
// of loop partition p (p modulo the loop partitions for a topic with more),
// whose local store holds the tables, timers and inboxes of p. It spreads
// the loop partitions evenly over the members (stream threads), keeps a
// partition with its previous owner where balance allows, and gives a
// partition whose owner left to a member of an instance that kept a warm
// copy of it. With standbys it names, for every partition, up to that many
// members of other instances that keep a standby copy of its store
// (standby.go): never a member of the owner's instance, which shares the
// owner's store, and never two of one instance.
//
// The leader sends the whole plan to every member (in the assignment's
// user data), so whichever member leads the next rebalance knows who owned
// what and where the standbys are. The join's user data stays the thread's
// AppInfo, identical across restarts: a static member that comes back
// with other join data makes Kafka rebalance the group. A leader that has
// never seen a plan (it restarted) plans from scratch, deterministically
// from the members' instance ids, so the same members get the same plan.
type assignor struct {
	loop     string
	standbys int
	self     string // the member's key (its group instance id)
	userData []byte // the member's AppInfo, its join user data

	mu      sync.Mutex
	last    *assignPlan // the last plan made or received
	planned []byte      // the encoding of the plan the leader made last
	gen     int32       // generation of the last assignment received
	mine    []int32     // the member's standby partitions in gen
}

func newAssignor(loop string, standbys int, self string, userData []byte) *assignor {
	return &assignor{loop: loop, standbys: standbys, self: self, userData: userData, gen: -1}
}

var (
	_ sarama.SubscriptionUserDataBalanceStrategy = (*assignor)(nil)
	_ sarama.OnAssignmentBalanceStrategy         = (*assignor)(nil)
)

func (a *assignor) Name() string { return assignorName }

// SubscriptionUserData keeps the join's user data the AppInfo: sarama
// would otherwise join with the last assignment's user data.
func (a *assignor) SubscriptionUserData([]string) ([]byte, error) { return a.userData, nil }

// Plan assigns the partitions of topics to members.
func (a *assignor) Plan(members map[string]sarama.ConsumerGroupMemberMetadata, topics map[string][]int32) (sarama.BalanceStrategyPlan, error) {
	var infos []memberInfo
	byKey := map[string]string{} // member key -> member id
	subscribed := map[string]map[string]bool{}
	for id, meta := range members {
		m := memberInfo{key: id, instance: id}
		if info, ok, err := wire.DecodeAppInfo(meta.UserData); ok && err == nil {
			m = memberInfo{key: groupInstanceID(info.Instance, info.Thread), instance: info.Instance}
		}
		if _, dup := byKey[m.key]; dup {
			m.key += "/" + id
		}
		byKey[m.key] = id
		subscribed[id] = map[string]bool{}
		for _, t := range meta.Topics {
			subscribed[id][t] = true
		}
		if subscribed[id][a.loop] {
			infos = append(infos, m)
		}
	}
	a.mu.Lock()
	prev := a.last
	a.mu.Unlock()
	loopParts := int32(len(topics[a.loop]))
	ap := planPartitions(infos, int(loopParts), a.standbys, prev)
	plan := sarama.BalanceStrategyPlan{}
	// every member is in the plan, also one without partitions: sarama
	// sends the assignment data only to members of the plan, and such a
	// member may keep standbys
	for id := range members {
		plan[id] = map[string][]int32{}
	}
	for p, o := range ap.Owner {
		if o >= 0 {
			plan.Add(byKey[ap.Members[o]], a.loop, int32(p))
		}
	}
	for topic, parts := range topics {
		if topic == a.loop {
			continue
		}
		var others []string // members subscribed to topic, for partitions whose owner is not
		for id := range members {
			if subscribed[id][topic] {
				others = append(others, id)
			}
		}
		slices.Sort(others)
		for i, p := range parts {
			id := ""
			if loopParts > 0 {
				if o := ap.Owner[p%loopParts]; o >= 0 {
					id = byKey[ap.Members[o]]
				}
			}
			if !subscribed[id][topic] {
				if len(others) == 0 {
					continue
				}
				id = others[i%len(others)]
			}
			plan.Add(id, topic, p)
		}
	}
	enc, err := json.Marshal(ap)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.last, a.planned = ap, enc
	a.mu.Unlock()
	return plan, nil
}

// AssignmentData is the whole plan, the same for every member.
func (a *assignor) AssignmentData(string, map[string][]int32, int32) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.planned, nil
}

// OnAssignment keeps the plan the member received, and its standbys.
func (a *assignor) OnAssignment(as *sarama.ConsumerGroupMemberAssignment, gen int32) {
	var ap assignPlan
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen, a.mine = gen, nil
	if as == nil || len(as.UserData) == 0 || json.Unmarshal(as.UserData, &ap) != nil || !ap.valid() {
		return
	}
	a.last = &ap
	for p, sbs := range ap.Standbys {
		for _, m := range sbs {
			if ap.Members[m] == a.self {
				a.mine = append(a.mine, int32(p))
			}
		}
	}
}

// standbysOf returns the member's standby partitions in generation gen;
// none if its last assignment was of another generation (the group chose
// another strategy).
func (a *assignor) standbysOf(gen int32) []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return nil
	}
	return slices.Clone(a.mine)
}

// stableRange is sarama's range strategy with the AppInfo as join user
// data at every join, as the assignor's; the group falls back to it while
// members of a version without the assignor are in it.
type stableRange struct {
	sarama.BalanceStrategy
	userData []byte
}

func (r stableRange) SubscriptionUserData([]string) ([]byte, error) { return r.userData, nil }

// memberInfo is a member as the plan knows it: its key (its group
// instance id) and its instance (the process whose threads share stores).
type memberInfo struct{ key, instance string }

// assignPlan is an assignment of the loop partitions: the members by key
// with their instances, each partition's owner and standbys as indexes
// into Members (-1: no owner).
type assignPlan struct {
	Members   []string `json:"members"`
	Instances []string `json:"instances"`
	Owner     []int    `json:"owner"`
	Standbys  [][]int  `json:"standbys"`
}

func (ap *assignPlan) valid() bool {
	if len(ap.Members) != len(ap.Instances) || len(ap.Owner) != len(ap.Standbys) {
		return false
	}
	ok := func(m int) bool { return m >= -1 && m < len(ap.Members) }
	for p, o := range ap.Owner {
		if !ok(o) {
			return false
		}
		for _, s := range ap.Standbys[p] {
			if s < 0 || !ok(s) {
				return false
			}
		}
	}
	return true
}

// planPartitions assigns parts loop partitions to members, each with up to
// standbys standbys, sticking to prev (nil: none) where balance allows.
func planPartitions(members []memberInfo, parts, standbys int, prev *assignPlan) *assignPlan {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b memberInfo) int { return cmp.Compare(a.key, b.key) })
	ap := &assignPlan{Owner: make([]int, parts), Standbys: make([][]int, parts)}
	idx := map[string]int{}
	instances := map[string]bool{}
	for i, m := range members {
		ap.Members = append(ap.Members, m.key)
		ap.Instances = append(ap.Instances, m.instance)
		idx[m.key] = i
		instances[m.instance] = true
	}
	for p := range ap.Owner {
		ap.Owner[p] = -1
	}
	n := len(members)
	if n == 0 {
		return ap
	}
	// what the previous plan says of partition p: its owner (index into
	// members, -1 if gone) and the instances that kept it warm (its
	// owner's, whose other threads share its store, then its standbys')
	prevOwner := func(p int) int {
		if prev == nil || p >= len(prev.Owner) || prev.Owner[p] < 0 {
			return -1
		}
		if i, ok := idx[prev.Members[prev.Owner[p]]]; ok {
			return i
		}
		return -1
	}
	warm := func(p int) []string {
		if prev == nil || p >= len(prev.Owner) {
			return nil
		}
		var w []string
		if o := prev.Owner[p]; o >= 0 {
			w = append(w, prev.Instances[o])
		}
		for _, s := range prev.Standbys[p] {
			w = append(w, prev.Instances[s])
		}
		return w
	}

	// every member gets q or q+1 partitions, r of them q+1
	q, r := parts/n, parts%n
	count := make([]int, n)
	perInstance := map[string]int{}
	extras := 0
	room := func(m int) bool { return count[m] < q || (count[m] == q && extras < r) }
	take := func(p, m int) {
		if count[m] == q {
			extras++
		}
		count[m]++
		perInstance[members[m].instance]++
		ap.Owner[p] = m
	}
	// previous owners keep what fits: first up to q each, then the extras
	for p := range parts {
		if m := prevOwner(p); m >= 0 && count[m] < q {
			take(p, m)
		}
	}
	for p := range parts {
		if m := prevOwner(p); ap.Owner[p] < 0 && m >= 0 && room(m) {
			take(p, m)
		}
	}
	// the rest go to an instance that kept them warm: the owner's (its
	// other threads share the store), else a standby's, its standby
	// thread first (it hands its store over directly, even one in
	// memory); else to the member with the fewest, on the instance with
	// the fewest
	for p := range parts {
		if ap.Owner[p] >= 0 {
			continue
		}
		best := -1
		bestOn := func(inst string) {
			if best >= 0 {
				return
			}
			for m := range members {
				if members[m].instance == inst && room(m) && (best < 0 || count[m] < count[best]) {
					best = m
				}
			}
		}
		if prev != nil && p < len(prev.Owner) {
			if o := prev.Owner[p]; o >= 0 {
				bestOn(prev.Instances[o])
			}
			for _, s := range prev.Standbys[p] {
				if m, ok := idx[prev.Members[s]]; ok && best < 0 && room(m) {
					best = m
				}
			}
			for _, s := range prev.Standbys[p] {
				bestOn(prev.Instances[s])
			}
		}
		if best < 0 {
			for m := range members {
				if !room(m) {
					continue
				}
				if best < 0 || count[m] < count[best] ||
					count[m] == count[best] && perInstance[members[m].instance] < perInstance[members[best].instance] {
					best = m
				}
			}
		}
		take(p, best)
	}

	// standbys: on other instances than the owner's, one per instance, the
	// warm ones first while their load allows, else the least loaded, and
	// of those the one with the fewest standbys of the owner's partitions,
	// so that the partitions of a member that leaves have their standbys
	// on many members
	k := min(standbys, len(instances)-1)
	if k <= 0 {
		return ap
	}
	load := make([]int, n)    // standbys per member
	pairs := map[[2]int]int{} // standbys per member and owner
	instLoad := map[string]int{}
	limit := (parts*k + n - 1) / n
	for p := range parts {
		used := map[string]bool{members[ap.Owner[p]].instance: true}
		w := warm(p)
		isWarm := func(m int) bool { return slices.Contains(w, members[m].instance) && load[m] < limit }
		for range k {
			best := -1
			for m := range members {
				if used[members[m].instance] {
					continue
				}
				if best < 0 {
					best = m
					continue
				}
				o := ap.Owner[p]
				if c := cmpStandby(isWarm(m), isWarm(best), load[m], load[best], pairs[[2]int{m, o}], pairs[[2]int{best, o}],
					instLoad[members[m].instance]+perInstance[members[m].instance],
					instLoad[members[best].instance]+perInstance[members[best].instance]); c < 0 {
					best = m
				}
			}
			if best < 0 {
				break
			}
			used[members[best].instance] = true
			load[best]++
			pairs[[2]int{best, ap.Owner[p]}]++
			instLoad[members[best].instance]++
			ap.Standbys[p] = append(ap.Standbys[p], best)
		}
	}
	return ap
}

// cmpStandby orders standby candidates: warm first, then the fewest
// standbys, the fewest of the owner's, the least loaded instance.
func cmpStandby(warmA, warmB bool, loadA, loadB, pairA, pairB, instA, instB int) int {
	if warmA != warmB {
		if warmA {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(loadA, loadB); c != 0 {
		return c
	}
	if c := cmp.Compare(pairA, pairB); c != 0 {
		return c
	}
	return cmp.Compare(instA, instB)
}

// String describes the plan, for logs and test failures.
func (ap *assignPlan) String() string {
	s := ""
	for p, o := range ap.Owner {
		owner := "-"
		if o >= 0 {
			owner = ap.Members[o]
		}
		var sb []string
		for _, m := range ap.Standbys[p] {
			sb = append(sb, ap.Members[m])
		}
		s += fmt.Sprintf("%d:%s%v ", p, owner, sb)
	}
	return s
}
