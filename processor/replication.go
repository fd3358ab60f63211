package processor

import (
	"errors"
	"fmt"
	"strconv"
)

// Values of [WithReplicationFactor] and [WithMinInsyncReplicas] that are
// not counts.
const (
	// ReplicationAuto chooses from the broker count of the cluster at
	// start-up: replication factor 3 and min.insync.replicas 2 on three or
	// more brokers, 1 and 1 on fewer. It is the default of both.
	ReplicationAuto = 0
	// ReplicationBrokerDefault leaves it to the broker's
	// default.replication.factor or min.insync.replicas.
	ReplicationBrokerDefault = -1
)

// WithReplicationFactor sets the replication factor of the topics the
// processor creates: a count, [ReplicationAuto] (the default) or
// [ReplicationBrokerDefault]. Run refuses to start with more than the
// cluster's brokers.
func WithReplicationFactor(n int16) Option { return optionFunc(func(c *config) { c.replication = n }) }

// WithMinInsyncReplicas sets min.insync.replicas of the topics the
// processor creates: how many replicas must have a write before Kafka
// confirms it (the processor writes with acks=all). A count,
// [ReplicationAuto] (the default: 2 with a replication factor of 3 or
// more, else 1) or [ReplicationBrokerDefault]. It must not exceed the
// replication factor: no write could succeed.
func WithMinInsyncReplicas(n int) Option { return optionFunc(func(c *config) { c.minISR = n }) }

// topicReplication is what created topics get: factor -1 and minISR 0
// leave it to the broker.
type topicReplication struct {
	factor int16
	minISR int
}

// configs adds min.insync.replicas to the topic configs of a new topic.
func (r topicReplication) configs(configs map[string]string) map[string]string {
	if r.minISR > 0 {
		configs["min.insync.replicas"] = strconv.Itoa(r.minISR)
	}
	return configs
}

// validateReplication reports the problems of the replication options that
// need no broker.
func (c *config) validateReplication() []error {
	var errs []error
	if c.replication < ReplicationBrokerDefault {
		errs = append(errs, fmt.Errorf("processor: replication factor %d: must be at least 1, or 0 to choose from the broker count, or -1 for the broker's default", c.replication))
	}
	if c.minISR < ReplicationBrokerDefault {
		errs = append(errs, fmt.Errorf("processor: min.insync.replicas %d: must be at least 1, or 0 to choose from the replication factor, or -1 for the broker's default", c.minISR))
	}
	if c.replication > 0 && c.minISR > int(c.replication) {
		errs = append(errs, fmt.Errorf("processor: min.insync.replicas %d is more than the replication factor %d: no write could ever succeed; make it at most %d", c.minISR, c.replication, c.replication))
	}
	return errs
}

// resolveReplication turns the options into what created topics get, on a
// cluster of the given number of brokers (0: unknown). It refuses a
// replication factor the cluster cannot hold.
func resolveReplication(factor int16, minISR int, brokers int) (topicReplication, error) {
	r := topicReplication{factor: factor, minISR: minISR}
	if r.factor == ReplicationAuto {
		switch {
		case brokers >= 3:
			r.factor = 3
		case brokers > 0:
			r.factor = 1
		default:
			r.factor = ReplicationBrokerDefault
		}
	}
	if brokers > 0 && int(r.factor) > brokers {
		return r, fmt.Errorf("processor: replication factor %d is more than the %d broker(s) of the cluster, so no topic could be created: "+
			"pass a replication factor of at most %d (--replication-factor), or 0 to choose from the broker count, or add brokers", r.factor, brokers, brokers)
	}
	switch {
	case r.minISR == ReplicationAuto && r.factor >= 3:
		r.minISR = 2
	case r.minISR == ReplicationAuto && r.factor > 0:
		r.minISR = 1
	case r.minISR == ReplicationAuto || r.minISR == ReplicationBrokerDefault:
		r.minISR = 0
	}
	if r.factor > 0 && r.minISR > int(r.factor) {
		return r, fmt.Errorf("processor: min.insync.replicas %d is more than the replication factor %d: no write could ever succeed; make it at most %d", r.minISR, r.factor, r.factor)
	}
	return r, nil
}

// brokerCounter is a cluster that knows how many brokers it has.
type brokerCounter interface {
	brokerCount() (int, error)
}

// resolveTopicReplication resolves the replication of created topics on
// cl, once at start-up, and keeps it for the tables created later.
func (p *Processor) resolveTopicReplication(cl cluster) error {
	brokers := 0
	if bc, ok := cl.(brokerCounter); ok {
		n, err := bc.brokerCount()
		if err != nil {
			return fmt.Errorf("processor: count the brokers: %w", err)
		}
		brokers = n
	}
	r, err := resolveReplication(p.cfg.replication, p.cfg.minISR, brokers)
	if err != nil {
		return err
	}
	p.cfg.topicRepl = r
	if brokers > 0 {
		p.cfg.logger.Debug("replication of created topics", "brokers", brokers, "replication_factor", r.factor, "min_insync_replicas", r.minISR)
	}
	return nil
}

var errNoBrokers = errors.New("the cluster's metadata lists no brokers")

func (c saramaCluster) brokerCount() (int, error) {
	n := len(c.client.Brokers())
	if n == 0 {
		return 0, errNoBrokers
	}
	return n, nil
}
