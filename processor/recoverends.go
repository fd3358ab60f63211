package processor

import (
	"fmt"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

// Recovery of a partition needs, for each of its changelogs (timers,
// idempotency keys, inbox, one table per function type), the partition's
// ends and the topic's id. Asked one changelog at a time that is four
// requests each, all on the thread's one connection to the leader, which
// Kafka serves one request at a time: a restart on an up-to-date store
// spent most of its time there (docs/scaling.md). A cluster that can ask
// for them together (batchCluster) answers them in four requests for all
// the changelogs of the partition.

// batchCluster is a cluster that can ask for the ends of several
// partitions and the ids of several topics at once.
type batchCluster interface {
	// listEnds returns the ends of each partition; a partition whose ends
	// could not be had is missing or has Err set.
	listEnds(parts []topicPart) map[topicPart]kafkaread.PartitionEnds
	// topicIDs returns the id of each topic (KIP-516) as text, "" if it
	// has none.
	topicIDs(topics []string) (map[string]string, error)
}

// changelogEnds are the ends and topic ids asked for ahead of recovery,
// by topic; a topic missing from a map is asked for on its own.
type changelogEnds struct {
	ends map[string]kafkaread.PartitionEnds
	ids  map[string]string
}

// prefetchEnds asks a batchCluster for the ends of partition part of every
// changelog and for their topic ids at once; with another cluster, or
// where the batch failed, it returns nothing and recovery asks each
// changelog on its own.
func prefetchEnds(cl cluster, logs []changelog, part int32) changelogEnds {
	known := changelogEnds{ends: map[string]kafkaread.PartitionEnds{}, ids: map[string]string{}}
	bc, ok := cl.(batchCluster)
	if !ok || len(logs) == 0 {
		return known
	}
	parts := make([]topicPart, len(logs))
	topics := make([]string, len(logs))
	for i, c := range logs {
		parts[i] = topicPart{c.topic, part}
		topics[i] = c.topic
	}
	for tp, e := range bc.listEnds(parts) {
		if e.Err == nil {
			known.ends[tp.topic] = e
		}
	}
	if ids, err := bc.topicIDs(topics); err == nil {
		known.ids = ids
	}
	return known
}

// endsOf returns the ends of partition part of topic, prefetched or asked
// for now.
func (k changelogEnds) endsOf(cl cluster, topic string, part int32) (start, hwm, lso int64, err error) {
	if e, ok := k.ends[topic]; ok {
		return e.Start, e.HWM, e.LSO, nil
	}
	return cl.ends(topic, part)
}

// idOf returns the id of topic, prefetched or asked for now.
func (k changelogEnds) idOf(cl cluster, topic string) (string, error) {
	if id, ok := k.ids[topic]; ok {
		return id, nil
	}
	return cl.topicID(topic)
}

func (c saramaCluster) listEnds(parts []topicPart) map[topicPart]kafkaread.PartitionEnds {
	tps := make([]kafkaread.TopicPartition, len(parts))
	for i, p := range parts {
		tps[i] = kafkaread.TopicPartition{Topic: p.topic, Partition: p.part}
	}
	out := make(map[topicPart]kafkaread.PartitionEnds, len(parts))
	for tp, e := range kafkaread.ListEnds(c.client, tps) {
		out[topicPart{tp.Topic, tp.Partition}] = e
	}
	return out
}

func (c saramaCluster) topicIDs(topics []string) (map[string]string, error) {
	broker := c.client.LeastLoadedBroker()
	if broker == nil {
		return nil, fmt.Errorf("topic ids: no broker available")
	}
	resp, err := broker.GetMetadata(&sarama.MetadataRequest{Version: 10, Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("topic ids: %w", err)
	}
	out := make(map[string]string, len(topics))
	for _, t := range resp.Topics {
		if t.Err != sarama.ErrNoError {
			continue // asked for on its own, which reports the error
		}
		id := ""
		if t.Uuid != (sarama.Uuid{}) {
			id = t.Uuid.String()
		}
		out[t.Name] = id
	}
	return out, nil
}
