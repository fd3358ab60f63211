package processor

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Fencing the transactions of members that are gone.
//
// A stream thread killed with SIGKILL leaves its Kafka transaction open.
// Until the broker aborts it (the transaction timeout, then the broker's
// periodic check), the last stable offset of every partition it wrote
// stays where the transaction began, and the thread that takes its
// partitions over can neither recover them nor consume past it in
// read_committed. So the leader's plan names, for every member of the
// previous plan that is no longer in the group and owned loop partitions,
// one member of the new plan (the new owner of the lowest of those
// partitions) that fences the gone member's transactional id before it
// recovers anything: it initialises a producer with that id, which bumps
// the id's epoch and makes the transaction coordinator abort the open
// transaction at once, and closes it. One member per gone id, so no two
// producers of one id race; never the id of a member in the group.

// planFence orders member By (an index into the new plan's Members) to
// fence the transactional id of the gone member Key.
type planFence struct {
	Key string `json:"key"`
	By  int    `json:"by"`
}

// goneOwners returns the fences of plan ap, made after prev (nil: none):
// one for every member that owned a loop partition in prev and is not in
// the group (live reports whether a member key is), by the new owner of
// the lowest partition it owned that has one.
func goneOwners(prev, ap *assignPlan, live func(key string) bool) []planFence {
	if prev == nil {
		return nil
	}
	var fences []planFence
	done := map[string]bool{}
	for p, o := range prev.Owner {
		if o < 0 || p >= len(ap.Owner) || ap.Owner[p] < 0 {
			continue
		}
		key := prev.Members[o]
		if done[key] || live(key) || !threadKey(key, prev.Instances[o]) {
			continue
		}
		done[key] = true
		fences = append(fences, planFence{Key: key, By: ap.Owner[p]})
	}
	return fences
}

// threadKey reports whether key is the group instance id of a stream
// thread of instance (groupInstanceID), whose transactional id is then
// the application's name, "-" and key: a member without the AppInfo is
// keyed by its member id, and has no transactional id the plan knows.
func threadKey(key, instance string) bool {
	if key == instance {
		return instance != ""
	}
	n, ok := strings.CutPrefix(key, instance+"-t")
	if !ok || instance == "" {
		return false
	}
	t, err := strconv.Atoi(n)
	return err == nil && t > 0 && strconv.Itoa(t) == n
}

// fenceGone fences the transactional ids of the gone members keys, one
// after the other. A fence that fails is logged and left: the broker
// aborts the transaction at its timeout anyway.
func (p *Processor) fenceGone(ctx context.Context, thread int, keys []string) {
	for _, key := range keys {
		if ctx.Err() != nil {
			return
		}
		id := p.topo.App + "-" + key
		start := time.Now()
		if err := p.fence(id); err != nil {
			p.cfg.logger.Warn("fence the transactional id of a member that left the group", "thread", thread, "transactional_id", id, "err", err)
			continue
		}
		p.cfg.logger.Info("fenced the transactional id of a member that left the group", "thread", thread, "transactional_id", id,
			"took", time.Since(start).Round(time.Millisecond))
	}
}

// fence initialises a transactional producer with the transactional id
// id and closes it: the coordinator aborts id's open transaction. It
// returns when the initialisation ends, within the bounds of the
// producer's retries, so that no fence of id outlives the rebalance.
func (p *Processor) fence(id string) error {
	ap, err := sarama.NewAsyncProducer(p.brokers, p.producerConfig(id))
	if err != nil {
		return err
	}
	return ap.Close()
}
