package processor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/wire"
)

// The stateloop assignor's plans, without a broker.

// testMembers returns the members of instances each with threads threads.
func testMembers(instances []string, threads int) []memberInfo {
	var ms []memberInfo
	for _, inst := range instances {
		for k := range threads {
			ms = append(ms, memberInfo{key: groupInstanceID(inst, k), instance: inst})
		}
	}
	return ms
}

// checkPlan checks what every plan must be: every partition owned, the
// owners balanced (counts differ by at most one), and each partition's
// standbys on distinct instances other than its owner's, as many as wanted
// and possible.
func checkPlan(t *testing.T, ap *assignPlan, parts, standbys int) map[string][]int {
	t.Helper()
	owned := map[string][]int{}
	instances := map[string]bool{}
	for _, inst := range ap.Instances {
		instances[inst] = true
	}
	want := min(standbys, len(instances)-1)
	for p := range parts {
		o := ap.Owner[p]
		if o < 0 {
			t.Fatalf("partition %d has no owner: %v", p, ap)
		}
		owned[ap.Members[o]] = append(owned[ap.Members[o]], p)
		used := map[string]bool{ap.Instances[o]: true}
		for _, s := range ap.Standbys[p] {
			if used[ap.Instances[s]] {
				t.Errorf("partition %d has a standby %s on an instance that has it already: %v", p, ap.Members[s], ap)
			}
			used[ap.Instances[s]] = true
		}
		if len(ap.Standbys[p]) != want {
			t.Errorf("partition %d has %d standbys, want %d: %v", p, len(ap.Standbys[p]), want, ap)
		}
	}
	lo, hi := parts, 0
	for _, m := range ap.Members {
		lo, hi = min(lo, len(owned[m])), max(hi, len(owned[m]))
	}
	if hi-lo > 1 {
		t.Errorf("unbalanced: members own between %d and %d partitions: %v", lo, hi, ap)
	}
	return owned
}

func TestPlanBalancesPartitionsAndPutsStandbysOnOtherInstances(t *testing.T) {
	for _, tc := range []struct {
		instances       []string
		threads         int
		parts, standbys int
	}{
		{[]string{"a", "b", "c"}, 1, 8, 1},
		{[]string{"a", "b", "c"}, 2, 12, 2},
		{[]string{"a", "b"}, 2, 4, 2}, // one other instance: one standby
		{[]string{"a", "b", "c", "d"}, 1, 3, 1},
		{[]string{"a"}, 3, 8, 1}, // no other instance: no standby
		{[]string{"a", "b", "c"}, 1, 8, 0},
	} {
		t.Run(fmt.Sprintf("%v×%d,%d partitions,%d standbys", tc.instances, tc.threads, tc.parts, tc.standbys), func(t *testing.T) {
			ap := planPartitions(testMembers(tc.instances, tc.threads), tc.parts, tc.standbys, nil)
			checkPlan(t, ap, tc.parts, tc.standbys)
			// standbys spread: no member keeps more than its share, rounded up
			load := map[int]int{}
			total := 0
			for _, sbs := range ap.Standbys {
				for _, s := range sbs {
					load[s]++
					total++
				}
			}
			limit := (total + len(ap.Members) - 1) / len(ap.Members)
			for m, n := range load {
				if n > limit {
					t.Errorf("%s keeps %d standbys, more than %d: %v", ap.Members[m], n, limit, ap)
				}
			}
		})
	}
}

func TestPlanIsTheSameForTheSameMembers(t *testing.T) {
	ms := testMembers([]string{"c", "a", "b"}, 2)
	first := planPartitions(ms, 16, 1, nil)
	slices.Reverse(ms)
	if again := planPartitions(ms, 16, 1, nil); again.String() != first.String() {
		t.Errorf("the same members in another order got another plan:\n%v\n%v", first, again)
	}
	// with the last plan known, nothing moves
	if again := planPartitions(ms, 16, 1, first); again.String() != first.String() {
		t.Errorf("planning again with the same members moved partitions:\n%v\n%v", first, again)
	}
}

// moved counts the partitions whose owner differs between two plans.
func moved(a, b *assignPlan) int {
	n := 0
	for p := range a.Owner {
		if a.Members[a.Owner[p]] != b.Members[b.Owner[p]] {
			n++
		}
	}
	return n
}

func TestPlanMovesOnlyWhatANewMemberTakes(t *testing.T) {
	const parts = 12
	before := planPartitions(testMembers([]string{"a", "b", "c"}, 1), parts, 1, nil)
	after := planPartitions(testMembers([]string{"a", "b", "c", "d"}, 1), parts, 1, before)
	owned := checkPlan(t, after, parts, 1)
	if n := moved(before, after); n != len(owned["d"]) || n != 3 {
		t.Errorf("%d partitions moved, the new member owns %v, want 3 moves to it:\n%v\n%v", n, owned["d"], before, after)
	}
}

func TestPlanGivesALeftMembersPartitionsToTheirStandbys(t *testing.T) {
	const parts = 12
	for _, standbys := range []int{1, 2} {
		t.Run(fmt.Sprint(standbys, " standbys"), func(t *testing.T) {
			before := planPartitions(testMembers([]string{"a", "b", "c", "d"}, 1), parts, standbys, nil)
			after := planPartitions(testMembers([]string{"a", "b", "c"}, 1), parts, standbys, before)
			checkPlan(t, after, parts, standbys)
			for p := range parts {
				was := before.Members[before.Owner[p]]
				now := after.Members[after.Owner[p]]
				if was != "d" {
					if now != was {
						t.Errorf("partition %d of %s, which stayed, moved to %s", p, was, now)
					}
					continue
				}
				var sbs []string
				for _, s := range before.Standbys[p] {
					sbs = append(sbs, before.Members[s])
				}
				if !slices.Contains(sbs, now) {
					t.Errorf("partition %d of the member that left went to %s, not to a standby of it %v:\n%v\n%v", p, now, sbs, before, after)
				}
			}
		})
	}
}

func TestPlanGivesALeftThreadsPartitionsToItsInstance(t *testing.T) {
	// the other thread of the instance shares its stores: it takes as
	// many of them as balance allows, 3 of 12 for 5 members
	const parts = 12
	before := planPartitions(testMembers([]string{"a", "b", "c"}, 2), parts, 1, nil)
	ms := testMembers([]string{"a", "b", "c"}, 2)
	ms = slices.DeleteFunc(ms, func(m memberInfo) bool { return m.key == "b-t1" })
	after := planPartitions(ms, parts, 1, before)
	owned := checkPlan(t, after, parts, 1)
	if len(owned["b"]) != 3 {
		t.Errorf("b owns %v after its other thread left, want 3 partitions:\n%v\n%v", owned["b"], before, after)
	}
	if n := moved(before, after); n != 2 {
		t.Errorf("%d partitions moved, want the 2 of b-t1:\n%v\n%v", n, before, after)
	}
}

// TestAssignorKeepsCoPartitioningAndItsJoinData runs the assignor as
// sarama does: the leader plans, every member receives the plan; partition
// p of every subscribed topic goes to one member, each member learns its
// standbys, and the join's user data stays the AppInfo.
func TestAssignorKeepsCoPartitioningAndItsJoinData(t *testing.T) {
	const loop, ingress = "app-loop", "orders"
	members := map[string]sarama.ConsumerGroupMemberMetadata{}
	assignors := map[string]*assignor{}
	for i, inst := range []string{"a", "b", "c"} {
		info := wire.AppendAppInfo(nil, wire.AppInfo{App: "app", Instance: inst, Threads: 1, Partitions: 6})
		id := fmt.Sprintf("member-%d", 9-i)
		members[id] = sarama.ConsumerGroupMemberMetadata{Topics: []string{loop, ingress}, UserData: info}
		assignors[id] = newAssignor(loop, 1, inst, info)
	}
	leader := assignors["member-9"]
	topics := map[string][]int32{loop: {0, 1, 2, 3, 4, 5}, ingress: {0, 1, 2, 3, 4, 5}}
	plan, err := leader.Plan(members, topics)
	if err != nil {
		t.Fatal(err)
	}
	owner := map[int32]string{}
	for id, ts := range plan {
		if len(ts[loop]) != 2 {
			t.Errorf("%s owns loop partitions %v, want 2", id, ts[loop])
		}
		if !slices.Equal(ts[loop], ts[ingress]) {
			t.Errorf("%s owns loop partitions %v and ingress partitions %v: not co-partitioned", id, ts[loop], ts[ingress])
		}
		for _, p := range ts[loop] {
			owner[p] = id
		}
	}
	standbyOf := map[int32]string{}
	for id, a := range assignors {
		data, err := leader.AssignmentData(id, plan[id], 7)
		if err != nil {
			t.Fatal(err)
		}
		a.OnAssignment(&sarama.ConsumerGroupMemberAssignment{Topics: plan[id], UserData: data}, 7)
		for _, p := range a.standbysOf(7) {
			if owner[p] == id {
				t.Errorf("%s is owner and standby of partition %d", id, p)
			}
			standbyOf[p] = id
		}
		if got := a.standbysOf(8); got != nil {
			t.Errorf("%s has standbys %v in a generation it was not assigned", id, got)
		}
		ud, err := a.SubscriptionUserData([]string{loop, ingress})
		if err != nil || string(ud) != string(members[id].UserData) {
			t.Errorf("%s joins with user data %q after an assignment, want its AppInfo", id, ud)
		}
	}
	if len(standbyOf) != 6 {
		t.Errorf("standbys of %d partitions, want 6: %v", len(standbyOf), standbyOf)
	}

	// a member restarts under a new member id and the group rebalances:
	// nothing moves (the plan goes by instance ids)
	members["member-10"] = members["member-8"]
	delete(members, "member-8")
	again, err := assignors["member-7"].Plan(members, topics)
	if err != nil {
		t.Fatal(err)
	}
	for p, id := range owner {
		if id == "member-8" {
			id = "member-10"
		}
		if !slices.Contains(again[id][loop], p) {
			t.Errorf("partition %d moved from %s after a restart: %v", p, id, again)
		}
	}
}

// TestAssignorTellsAMemberWithoutPartitionsItsStandbys: with more members
// than partitions, a member that owns none still gets the plan, and may
// keep standbys.
func TestAssignorTellsAMemberWithoutPartitionsItsStandbys(t *testing.T) {
	const loop = "app-loop"
	members := map[string]sarama.ConsumerGroupMemberMetadata{}
	assignors := map[string]*assignor{}
	for _, inst := range []string{"a", "b", "c"} {
		info := wire.AppendAppInfo(nil, wire.AppInfo{App: "app", Instance: inst, Threads: 1, Partitions: 2})
		members["m-"+inst] = sarama.ConsumerGroupMemberMetadata{Topics: []string{loop}, UserData: info}
		assignors["m-"+inst] = newAssignor(loop, 2, inst, info)
	}
	leader := assignors["m-a"]
	plan, err := leader.Plan(members, map[string][]int32{loop: {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	idle := 0
	for id, a := range assignors {
		ts, ok := plan[id]
		if !ok {
			t.Fatalf("%s is not in the plan %v", id, plan)
		}
		data, err := leader.AssignmentData(id, ts, 3)
		if err != nil {
			t.Fatal(err)
		}
		a.OnAssignment(&sarama.ConsumerGroupMemberAssignment{Topics: ts, UserData: data}, 3)
		if len(ts[loop]) == 0 {
			idle++
			// two standbys per partition on the two other instances:
			// the idle member keeps both partitions
			if got := a.standbysOf(3); !slices.Equal(got, []int32{0, 1}) {
				t.Errorf("the member without partitions keeps standbys %v, want [0 1]", got)
			}
		}
	}
	if idle != 1 {
		t.Errorf("%d members without partitions, want 1: %v", idle, plan)
	}
}

// TestPlanGivesALeftMembersPartitionsToTheThreadOfTheirStandby: of the
// threads of the instance that kept a partition's standby, the thread
// that kept it takes the partition over, so its store changes hands
// within the thread.
func TestPlanGivesALeftMembersPartitionsToTheThreadOfTheirStandby(t *testing.T) {
	const parts = 8
	before := planPartitions(testMembers([]string{"a", "b"}, 2), parts, 1, nil)
	after := planPartitions(testMembers([]string{"a"}, 2), parts, 1, before)
	checkPlan(t, after, parts, 1)
	for p := range parts {
		if before.Instances[before.Owner[p]] != "b" {
			continue
		}
		if want, got := before.Members[before.Standbys[p][0]], after.Members[after.Owner[p]]; got != want {
			t.Errorf("partition %d of b went to %s, not to %s, which kept its standby:\n%v\n%v", p, got, want, before, after)
		}
	}
}
