package processor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

// PartitionFor returns the partition of n that holds a function id (and
// the state of every type for it), as the runtime computes it.
func PartitionFor(id string, n int32) int32 { return partitionFor(id, n) }

// partitionFor returns the partition of a key, the way goka's default
// hasher and sarama's hash partitioner pick it (FNV-1a 32, sign folded), so
// goka emitters and views agree with the runtime on where an id lives.
func partitionFor(key string, n int32) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}

type topicSpec struct {
	name       string
	partitions int32
	compacted  bool
	// exact means the topic must have exactly this many partitions
	exact bool
	// retention, if set, also deletes records older than it
	retention time.Duration
	// noCompaction means the topic must not be compacted
	noCompaction bool
}

// check returns what is wrong with an existing topic for the spec: a
// partition count other than the application's where it must match, no
// compaction where records are kept by key, compaction on the loop topic.
func (s topicSpec) check(d sarama.TopicDetail) error {
	var errs []error
	if s.exact && d.NumPartitions != s.partitions {
		errs = append(errs, fmt.Errorf("topic %s has %d partitions, the application needs %d: "+
			"set the partition count to %d, or delete the application's internal topics to start over",
			s.name, d.NumPartitions, s.partitions, d.NumPartitions))
	}
	policy := "delete"
	if p := d.ConfigEntries["cleanup.policy"]; p != nil {
		policy = *p
	}
	compacted := slices.Contains(strings.Split(policy, ","), "compact")
	switch {
	case s.compacted && !compacted:
		errs = append(errs, fmt.Errorf("topic %s has cleanup.policy=%s, the application needs it compacted: "+
			"set cleanup.policy=compact on it (kafka-configs --alter --add-config cleanup.policy=compact), or delete it to have it created", s.name, policy))
	case s.noCompaction && compacted:
		errs = append(errs, fmt.Errorf("topic %s has cleanup.policy=%s; compaction would drop messages before they are processed: "+
			"set cleanup.policy=delete on it", s.name, policy))
	}
	return errors.Join(errs...)
}

// tableSpec is the spec of a function type's table topic.
func (p *Processor) tableSpec(fn functions.TypeName) topicSpec {
	return topicSpec{name: string(p.topo.TableTopic(fn)), partitions: p.topo.PartitionCount(), compacted: true, exact: true}
}

// topicSpecs lists every topic the application uses.
func (p *Processor) topicSpecs() []topicSpec {
	n := p.topo.PartitionCount()
	specs := []topicSpec{
		{name: string(p.topo.LoopTopic()), partitions: n, exact: true, noCompaction: true},
		{name: string(p.topo.DLQTopic()), partitions: n},
		{name: string(p.topo.TimersTopic()), partitions: n, compacted: true, exact: true},
		{name: string(p.topo.RepliesTopic()), partitions: n},
		{name: string(p.topo.IdempotencyTopic()), partitions: n, compacted: true, exact: true, retention: 2 * p.cfg.idempotencyWindow},
		{name: string(p.topo.PositionsTopic()), partitions: n, compacted: true, exact: true},
	}
	for _, fn := range p.topo.Functions {
		specs = append(specs, p.tableSpec(fn))
	}
	for _, in := range p.topo.Ingresses {
		specs = append(specs, topicSpec{name: string(in.Topic), partitions: n})
	}
	for _, e := range p.topo.Egresses {
		// (an AnyTopic egress writes to topics that must exist already)
		for _, t := range e.Topics {
			specs = append(specs, topicSpec{name: string(t), partitions: n})
		}
	}
	return specs
}

// ensureTopics creates missing topics (if allowed) and checks that the loop
// and table topics have the configured partition count. It reports every
// problem at once.
func (p *Processor) ensureTopics(client sarama.Client) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("processor: admin client: %w", err)
	}
	// closing admin would close the shared client; it holds nothing else
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("processor: list topics: %w", err)
	}
	var errs []error
	seen := make(map[string]bool)
	for _, s := range p.topicSpecs() {
		if seen[s.name] {
			continue
		}
		seen[s.name] = true
		d, ok := existing[s.name]
		if ok {
			if err := s.check(d); err != nil {
				errs = append(errs, fmt.Errorf("processor: %w", err))
			}
			continue
		}
		if !p.cfg.createTopics {
			errs = append(errs, fmt.Errorf("processor: topic %s does not exist; create it or allow topic creation", s.name))
			continue
		}
		detail := &sarama.TopicDetail{NumPartitions: s.partitions, ReplicationFactor: p.cfg.replication, ConfigEntries: map[string]*string{}}
		if s.compacted {
			compact := "compact"
			if s.retention > 0 {
				compact = "compact,delete"
				ms := strconv.FormatInt(s.retention.Milliseconds(), 10)
				detail.ConfigEntries["retention.ms"] = &ms
			}
			detail.ConfigEntries["cleanup.policy"] = &compact
		}
		if err := admin.CreateTopic(s.name, detail, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("processor: create topic %s: %w", s.name, err))
			continue
		}
		p.cfg.logger.Info("created topic", "topic", s.name, "partitions", s.partitions, "compacted", s.compacted)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	if err := client.RefreshMetadata(names...); err != nil {
		return err
	}
	// A topic is usable a moment after its creation is confirmed (on Kafka
	// its partitions answer "not the leader" until then).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaread.WaitReady(ctx, client, names...); err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// tableTypes returns the function types whose table topics exist, sorted.
func (p *Processor) tableTypes() []functions.TypeName {
	p.tablesMu.Lock()
	defer p.tablesMu.Unlock()
	out := make([]functions.TypeName, 0, len(p.tables))
	for fn := range p.tables {
		out = append(out, fn)
	}
	slices.Sort(out)
	return out
}

func (p *Processor) hasTable(fn functions.TypeName) bool {
	p.tablesMu.Lock()
	defer p.tablesMu.Unlock()
	return p.tables[fn]
}

// discoverTables adds the table topics of function types in the
// topology's namespaces that exist on the cluster: other instances may have
// created them since this one started. A table that does not fit the
// application (partition count, compaction) is not used: messages to its
// type go to the dead-letter topic with the reason.
func (p *Processor) discoverTables(client sarama.Client) error {
	if len(p.topo.Namespaces) == 0 {
		return nil
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("processor: admin client: %w", err)
	}
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("processor: list topics: %w", err)
	}
	p.tablesMu.Lock()
	defer p.tablesMu.Unlock()
	for name, d := range existing {
		fn, ok := p.topo.TableFunction(name)
		if !ok || !p.topo.HasFunction(fn) || p.tables[fn] {
			continue
		}
		if err := p.tableSpec(fn).check(d); err != nil {
			if p.badTables[fn] == nil {
				p.cfg.logger.Error("the table of a function type does not fit the application; messages to the type go to the dead-letter topic",
					"function_type", fn, "topic", name, "err", err)
			}
			p.badTables[fn] = err
			continue
		}
		delete(p.badTables, fn)
		p.tables[fn] = true
		p.cfg.logger.Info("found the table of a function type", "function_type", fn, "topic", name)
	}
	return nil
}

// ensureTable creates the table topic of a function type of one of the
// topology's namespaces when it is first invoked. It refuses a table that
// exists and does not fit the application.
func (p *Processor) ensureTable(client sarama.Client, fn functions.TypeName) error {
	if p.hasTable(fn) {
		return nil
	}
	p.tablesMu.Lock()
	bad := p.badTables[fn]
	p.tablesMu.Unlock()
	if bad != nil {
		return bad
	}
	spec := p.tableSpec(fn)
	topic := spec.name
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	created := false
	if p.cfg.createTopics {
		compact := "compact"
		detail := &sarama.TopicDetail{NumPartitions: spec.partitions, ReplicationFactor: p.cfg.replication,
			ConfigEntries: map[string]*string{"cleanup.policy": &compact}}
		err := admin.CreateTopic(topic, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create table topic %s of %s: %w", topic, fn, err)
		}
		created = err == nil
	}
	if !created {
		// created by another instance, or by someone else: check it
		existing, err := admin.ListTopics()
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		d, ok := existing[topic]
		if !ok {
			return fmt.Errorf("table topic %s of %s does not exist and topic creation is off; create it (compacted, %d partitions)", topic, fn, spec.partitions)
		}
		if err := spec.check(d); err != nil {
			p.tablesMu.Lock()
			p.badTables[fn] = err
			p.tablesMu.Unlock()
			return err
		}
	}
	if err := client.RefreshMetadata(topic); err != nil {
		return fmt.Errorf("table topic %s of %s: %w", topic, fn, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaread.WaitReady(ctx, client, topic); err != nil {
		return fmt.Errorf("table topic %s of %s: %w", topic, fn, err)
	}
	p.tablesMu.Lock()
	p.tables[fn] = true
	p.tablesMu.Unlock()
	p.cfg.logger.Info("created the table of a function type", "function_type", fn, "topic", topic)
	return nil
}
