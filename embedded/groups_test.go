package embedded

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupMember speaks the classic consumer group protocol by hand over its
// own connection, so a test can drop the connection at an exact moment.
type groupMember struct {
	t       *testing.T
	c       *rawClient
	group   string
	id      string
	gen     int32
	leader  bool
	others  []string // member ids the leader got, itself included
	pending int32    // correlation id of the JoinGroup sent by sendJoin
}

const (
	testSessionMs   = 1000
	testRebalanceMs = 30000
)

// newGroupMember connects a member and gets its member id.
func newGroupMember(t *testing.T, addr, group string) *groupMember {
	c := newRawClient(addr)
	t.Cleanup(c.close)
	m := &groupMember{t: t, c: c, group: group}
	m.memberID()
	return m
}

func (m *groupMember) joinRequest() *kmsg.JoinGroupRequest {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 7
	req.Group = m.group
	req.MemberID = m.id
	req.SessionTimeoutMillis = testSessionMs
	req.RebalanceTimeoutMillis = testRebalanceMs
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

// memberID gets a member id: the first JoinGroup answers
// MEMBER_ID_REQUIRED with it (KIP-394).
func (m *groupMember) memberID() {
	m.t.Helper()
	resp, err := m.c.request(context.Background(), m.joinRequest())
	if err != nil {
		m.t.Fatal(err)
	}
	r := resp.(*kmsg.JoinGroupResponse)
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		m.t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", kerr.ErrorForCode(r.ErrorCode))
	}
	m.id = r.MemberID
}

// join joins the group and waits for the answer; the leader then syncs
// with an empty assignment for every member.
func (m *groupMember) join() {
	m.t.Helper()
	m.joinOnly()
	if err := m.sync(); err != nil {
		m.t.Fatalf("sync: %v", err)
	}
}

// joinOnly sends a JoinGroup request and waits for the answer.
func (m *groupMember) joinOnly() {
	m.t.Helper()
	m.sendJoin()
	m.receiveJoin()
}

// sendJoin writes a JoinGroup request without waiting for its answer.
func (m *groupMember) sendJoin() {
	m.t.Helper()
	conn, err := m.c.connect(context.Background())
	if err != nil {
		m.t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(rawTimeout)); err != nil {
		m.t.Fatal(err)
	}
	if m.pending, err = m.c.send(conn, m.joinRequest()); err != nil {
		m.t.Fatal(err)
	}
}

// receiveJoin reads the answer to the JoinGroup request that sendJoin
// sent.
func (m *groupMember) receiveJoin() {
	m.t.Helper()
	conn, err := m.c.connect(context.Background())
	if err != nil {
		m.t.Fatal(err)
	}
	resp, err := receive(conn, m.joinRequest(), m.pending)
	if err != nil {
		m.t.Fatal(err)
	}
	r := resp.(*kmsg.JoinGroupResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		m.t.Fatalf("join: %v", err)
	}
	m.gen, m.leader, m.others = r.Generation, r.LeaderID == m.id, nil
	for _, o := range r.Members {
		m.others = append(m.others, o.MemberID)
	}
}

// sync sends a SyncGroup request (the leader's with an empty assignment
// for every member) and returns the broker's error.
func (m *groupMember) sync() error {
	m.t.Helper()
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.Generation, sync.MemberID = m.group, m.gen, m.id
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for _, o := range m.others {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = o
		empty := kmsg.NewConsumerMemberAssignment()
		a.MemberAssignment = empty.AppendTo(nil)
		sync.GroupAssignment = append(sync.GroupAssignment, a)
	}
	resp, err := m.c.request(context.Background(), sync)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.(*kmsg.SyncGroupResponse).ErrorCode)
}

// heartbeat sends one heartbeat and returns the broker's error.
func (m *groupMember) heartbeat() error {
	m.t.Helper()
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.Generation, hb.MemberID = m.group, m.gen, m.id
	resp, err := m.c.request(context.Background(), hb)
	if err != nil {
		m.t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.(*kmsg.HeartbeatResponse).ErrorCode)
}

// groupBroker starts a broker for a group test; it returns its address and
// a client to describe groups with.
func groupBroker(t *testing.T) (string, *rawClient) {
	b := start(t, Config{Listen: "127.0.0.1:0"})
	admin := newRawClient(b.Addr())
	t.Cleanup(admin.close)
	return b.Addr(), admin
}

// describeMembers returns the group's state and its member ids.
func describeMembers(t *testing.T, c *rawClient, group string) (string, []string) {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	resp, err := c.request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	g := resp.(*kmsg.DescribeGroupsResponse).Groups[0]
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.MemberID)
	}
	slices.Sort(ids)
	return g.State, ids
}

// TestMemberKilledWhileJoiningExpires is issue 10's ghost member on the
// embedded broker: a consumer killed while its JoinGroup waited for the
// group to rebalance stayed a member for good (kfake never started its
// session), and the partitions the leader gave it were never consumed.
// Here a member's connection closes while its JoinGroup waits; the living
// leader completes the rebalance and syncs with both members; the dead one
// must leave the group within about a session timeout, as on Kafka.
func TestMemberKilledWhileJoiningExpires(t *testing.T) {
	addr, admin := groupBroker(t)
	const group = "ghosts"

	live := newGroupMember(t, addr, group)
	live.join()

	// the dead member: it has its member id, sends its JoinGroup (the
	// group now waits for live to rejoin) and its connection closes
	dead := newGroupMember(t, addr, group)
	dead.sendJoin()
	waitUntil(t, 10*time.Second, "the dead member waiting in the group", func() (bool, string) {
		state, ids := describeMembers(t, admin, group)
		return state == "PreparingRebalance" && len(ids) == 2, fmt.Sprint(state, ids)
	})
	dead.c.close()

	// live notices the rebalance, rejoins and, as leader, assigns the
	// dead member too: the broker sent it its answer on a closed
	// connection
	waitUntil(t, 10*time.Second, "the rebalance", func() (bool, string) {
		err := live.heartbeat()
		return err == kerr.RebalanceInProgress, fmt.Sprint(err)
	})
	live.join()
	if !live.leader || !slices.Contains(live.others, dead.id) {
		t.Fatalf("generation %d: leader %v, members %v; want live leading with the dead member %s", live.gen, live.leader, live.others, dead.id)
	}
	synced := time.Now()

	// Kafka expires the dead member a session timeout after the join
	// completed; allow a few more seconds on a loaded machine
	waitUntil(t, testSessionMs*time.Millisecond+5*time.Second, "the dead member gone from the group", func() (bool, string) {
		if err := live.heartbeat(); err != nil && err != kerr.RebalanceInProgress {
			t.Fatalf("heartbeat of the living member: %v", err)
		}
		state, ids := describeMembers(t, admin, group)
		return !slices.Contains(ids, dead.id), fmt.Sprint(state, ids)
	})
	t.Logf("the dead member left the group %v after the sync", time.Since(synced).Round(10*time.Millisecond))
}

// TestFollowersOfADeadLeaderRejoin: the member that kfake makes the leader
// of a generation was killed while its JoinGroup waited, so it never
// syncs. The living members wait for their SyncGroup answers; Kafka keeps
// them in the group and expires the dead leader a session timeout after
// the join, and they join again. kfake expired the waiting members
// themselves and never answered their SyncGroup requests, so the clients
// hung until their request timeouts (30 s in sarama).
func TestFollowersOfADeadLeaderRejoin(t *testing.T) {
	addr, admin := groupBroker(t)
	const group = "headless"

	// dead leads a stable group of itself and live
	dead := newGroupMember(t, addr, group)
	dead.join()
	live := newGroupMember(t, addr, group)
	live.sendJoin()
	waitUntil(t, 10*time.Second, "the rebalance", func() (bool, string) {
		err := dead.heartbeat()
		return err == kerr.RebalanceInProgress, fmt.Sprint(err)
	})
	dead.join()
	live.receiveJoin()
	if err := live.sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}

	// a third member starts a rebalance and waits; dead rejoins (it stays
	// the leader) and dies; live's rejoin completes the generation
	third := newGroupMember(t, addr, group)
	third.sendJoin()
	waitUntil(t, 10*time.Second, "the third member", func() (bool, string) {
		state, ids := describeMembers(t, admin, group)
		return state == "PreparingRebalance" && len(ids) == 3, fmt.Sprint(state, ids)
	})
	dead.sendJoin()
	time.Sleep(100 * time.Millisecond) // kfake parks it
	dead.c.close()
	live.joinOnly()
	if live.leader {
		t.Fatal("live leads the generation; want the dead member leading")
	}
	third.receiveJoin()
	synced := time.Now()
	thirdSync := make(chan error, 1)
	go func() { thirdSync <- third.sync() }()

	// live waits for its SyncGroup answer: a rebalance, once the dead
	// leader has expired
	err := live.sync()
	took := time.Since(synced)
	if err != kerr.RebalanceInProgress {
		t.Errorf("live's SyncGroup answered %v after %v, want REBALANCE_IN_PROGRESS", err, took.Round(10*time.Millisecond))
	}
	if err := <-thirdSync; err != kerr.RebalanceInProgress {
		t.Errorf("the third member's SyncGroup answered %v, want REBALANCE_IN_PROGRESS", err)
	}
	if limit := testSessionMs*time.Millisecond + 3*time.Second; took > limit {
		t.Errorf("the waiting members got their answers %v after they synced, want within %v", took, limit)
	}
	t.Logf("the waiting members were told to rejoin %v after they synced", took.Round(10*time.Millisecond))
}

// waitUntil polls cond every 50 ms until it holds, failing the test after
// timeout with cond's last state.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
