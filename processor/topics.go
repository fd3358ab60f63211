package processor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
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
}

// topicSpecs lists every topic the application uses.
func (p *Processor) topicSpecs() []topicSpec {
	n := p.topo.PartitionCount()
	specs := []topicSpec{
		{name: string(p.topo.LoopTopic()), partitions: n, exact: true},
		{name: string(p.topo.DLQTopic()), partitions: n},
		{name: string(p.topo.TimersTopic()), partitions: n, compacted: true, exact: true},
		{name: string(p.topo.RepliesTopic()), partitions: n},
		{name: string(p.topo.IdempotencyTopic()), partitions: n, compacted: true, exact: true, retention: 2 * p.cfg.idempotencyWindow},
	}
	for _, fn := range p.topo.Functions {
		specs = append(specs, topicSpec{name: string(p.topo.TableTopic(fn)), partitions: n, compacted: true, exact: true})
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
			if s.exact && d.NumPartitions != s.partitions {
				errs = append(errs, fmt.Errorf("processor: topic %s has %d partitions, the application needs %d: "+
					"set the partition count to %d, or delete the application's internal topics to start over",
					s.name, d.NumPartitions, s.partitions, d.NumPartitions))
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
	names := slices.Sorted(maps.Keys(seen))
	// Kafka makes a new topic known a while after it confirmed its
	// creation: seconds when a first start creates a few hundred
	// partitions (issue 10). Nothing may use the topics before.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), topicWait)
	defer cancel()
	if err := kafkaread.WaitReady(ctx, client, names...); err != nil {
		return fmt.Errorf("processor: the application's topics are not ready after %v (check the broker's log, then start again): %w",
			time.Since(start).Round(time.Second), err)
	}
	p.cfg.logger.Debug("topics ready", "topics", len(names), "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// topicWait bounds the wait for the metadata of the application's topics
// at start-up.
const topicWait = 2 * time.Minute

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
// created them since this one started.
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
	for name := range existing {
		if fn, ok := p.topo.TableFunction(name); ok && p.topo.HasFunction(fn) && !p.tables[fn] {
			p.tables[fn] = true
			p.cfg.logger.Info("found the table of a function type", "function_type", fn, "topic", name)
		}
	}
	return nil
}

// ensureTable creates the table topic of a function type of one of the
// topology's namespaces when it is first invoked.
func (p *Processor) ensureTable(client sarama.Client, fn functions.TypeName) error {
	if p.hasTable(fn) {
		return nil
	}
	topic := string(p.topo.TableTopic(fn))
	if !p.cfg.createTopics {
		return fmt.Errorf("table topic %s of %s does not exist and topic creation is off; create it (compacted, %d partitions)", topic, fn, p.topo.PartitionCount())
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	compact := "compact"
	detail := &sarama.TopicDetail{NumPartitions: p.topo.PartitionCount(), ReplicationFactor: p.cfg.replication,
		ConfigEntries: map[string]*string{"cleanup.policy": &compact}}
	if err := admin.CreateTopic(topic, detail, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create table topic %s of %s: %w", topic, fn, err)
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
