package kafkaread

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// PartitionCounts returns the partition count of each of topics that
// exists, or of every topic if topics is nil, from one metadata request to
// the client's least loaded broker. The request never creates a topic,
// whatever the client's Metadata.AllowAutoTopicCreation says: asking about
// a missing topic with auto-creation on makes Kafka (with its default
// auto.create.topics.enable=true) and kfake create it with the broker's
// defaults. A topic that is missing, or that the broker reports with an
// error, is left out.
func PartitionCounts(client sarama.Client, topics []string) (map[string]int32, error) {
	b := client.LeastLoadedBroker()
	if b == nil {
		return nil, errors.New("no broker is reachable")
	}
	_ = b.Open(client.Config()) // ErrAlreadyConnected if it is open
	req := sarama.NewMetadataRequest(client.Config().Version, topics)
	req.AllowAutoTopicCreation = false
	resp, err := b.GetMetadata(req)
	if err != nil {
		return nil, fmt.Errorf("metadata from broker %s: %w", b.Addr(), err)
	}
	out := make(map[string]int32, len(resp.Topics))
	for _, t := range resp.Topics {
		if errors.Is(t.Err, sarama.ErrNoError) {
			out[t.Name] = int32(len(t.Partitions))
		}
	}
	return out, nil
}
