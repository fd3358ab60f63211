package processor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
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
func (s topicSpec) check(d topicInfo) error {
	var errs []error
	if s.exact && d.Partitions != s.partitions {
		errs = append(errs, fmt.Errorf("topic %s has %d partitions, the application needs %d: "+
			"set the partition count to %d, or delete the application's internal topics to start over",
			s.name, d.Partitions, s.partitions, d.Partitions))
	}
	policy := "delete"
	if p, ok := d.Configs["cleanup.policy"]; ok {
		policy = p
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
// compactedSegment is segment.ms of the compacted topics stateloop
// creates: how long writes may stay in the active segment, which the log
// cleaner does not compact.
const compactedSegment = time.Hour

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
		{name: string(p.topo.InboxTopic()), partitions: n, compacted: true, exact: true},
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

// ensureTopics creates missing topics (if allowed) and checks that the
// existing ones fit the application. It reports every problem at once.
func (p *Processor) ensureTopics(cl cluster) error {
	if err := p.resolveTopicReplication(cl); err != nil {
		return err
	}
	existing, err := cl.topics()
	if err != nil {
		return fmt.Errorf("processor: %w", err)
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
		configs := map[string]string{}
		if s.compacted {
			configs["cleanup.policy"] = "compact"
			// Kafka never compacts the active segment, which rolls at 1 GiB
			// or after 7 days by default: a rebuild would read days of a
			// busy table's writes; rolled hourly, it reads about the
			// addresses plus an hour of writes (docs/scaling.md)
			configs["segment.ms"] = strconv.FormatInt(compactedSegment.Milliseconds(), 10)
			if s.retention > 0 {
				configs["cleanup.policy"] = "compact,delete"
				configs["retention.ms"] = strconv.FormatInt(s.retention.Milliseconds(), 10)
			}
		}
		if err := cl.createTopic(s.name, s.partitions, p.cfg.topicRepl.factor, p.cfg.topicRepl.configs(configs)); err != nil && !errors.Is(err, errTopicExists) {
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
	if err := cl.waitReady(ctx, names...); err != nil {
		return fmt.Errorf("processor: the application's topics are not ready after %v (check the broker's log, then start again): %w",
			time.Since(start).Round(time.Second), err)
	}
	p.cfg.logger.Debug("topics ready", "topics", len(names), "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// topicWait bounds the wait for the metadata of the application's topics
// at start-up.
const topicWait = 2 * time.Minute

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
func (p *Processor) discoverTables(cl cluster) error {
	if len(p.topo.Namespaces) == 0 {
		return nil
	}
	existing, err := cl.topics()
	if err != nil {
		return fmt.Errorf("processor: %w", err)
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

// tableError returns why the table of a function type does not fit the
// application, if it does not.
func (p *Processor) tableError(fn functions.TypeName) (error, bool) {
	p.tablesMu.Lock()
	defer p.tablesMu.Unlock()
	err := p.badTables[fn]
	return err, err != nil
}

// retryTableAfter is how long createTable waits before it tries again to
// create a table whose creation failed for another reason than a table
// that does not fit.
const retryTableAfter = time.Second

// createTable creates the table of a function type of one of the
// topology's namespaces on a goroutine of its own (at most one at a time
// per type), so that no session waits for it: hasTable turns true, or
// tableError names why the table cannot be used.
func (p *Processor) createTable(cl cluster, fn functions.TypeName) {
	p.tablesMu.Lock()
	last, busy := p.creating[fn]
	if p.tables[fn] || p.badTables[fn] != nil || busy && (last.IsZero() || time.Since(last) < retryTableAfter) {
		p.tablesMu.Unlock()
		return
	}
	p.creating[fn] = time.Time{} // running
	p.tablesMu.Unlock()
	go func() {
		err := p.ensureTable(cl, fn)
		p.tablesMu.Lock()
		defer p.tablesMu.Unlock()
		if err == nil || p.badTables[fn] != nil {
			delete(p.creating, fn)
			return
		}
		p.creating[fn] = time.Now()
		p.cfg.logger.Warn("creating the table of a function type failed; trying again", "function_type", fn, "err", err)
	}()
}

// ensureTable creates the table topic of a function type of one of the
// topology's namespaces when it is first invoked. It refuses a table that
// exists and does not fit the application.
func (p *Processor) ensureTable(cl cluster, fn functions.TypeName) error {
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
	created := false
	if p.cfg.createTopics {
		err := cl.createTopic(topic, spec.partitions, p.cfg.topicRepl.factor, p.cfg.topicRepl.configs(map[string]string{"cleanup.policy": "compact"}))
		if err != nil && !errors.Is(err, errTopicExists) {
			return fmt.Errorf("create table topic %s of %s: %w", topic, fn, err)
		}
		created = err == nil
	}
	if !created {
		// created by another instance, or by someone else: check it
		existing, err := cl.topics()
		if err != nil {
			return err
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.waitReady(ctx, topic); err != nil {
		return fmt.Errorf("table topic %s of %s: %w", topic, fn, err)
	}
	p.tablesMu.Lock()
	p.tables[fn] = true
	p.tablesMu.Unlock()
	p.cfg.logger.Info("created the table of a function type", "function_type", fn, "topic", topic)
	return nil
}
