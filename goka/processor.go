package gokainterop

import (
	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/gokaview"
)

// ProcessorOptions returns the goka processor options a goka processor
// needs to read what a stateloop application writes:
//
//   - a consumer group that reads read_committed ([ConsumerGroupBuilder]),
//     for goka.Input on an egress topic: stateloop writes egress records in
//     transactions, and a stock goka processor would also process the
//     records of aborted ones, which stateloop writes again;
//   - a read_committed consumer and gokaview's topic manager for the
//     tables a processor recovers, so that goka.Lookup of a function
//     type's table ([Table], [StateCodec]) sees committed state only and
//     finishes recovering.
//
// The processor's own group table and streams are goka's, written without
// transactions; reading them read_committed changes nothing. Pass the
// options to goka.NewProcessor before options of your own. Goka's default
// for a new group is to start at the newest offset of its input streams;
// set Consumer.Offsets.Initial = sarama.OffsetOldest through
// [WithSaramaConfig] to read an egress topic from its start.
func ProcessorOptions(opts ...Option) []goka.ProcessorOption {
	s := newSettings(opts)
	gv := s.gokaview()
	return []goka.ProcessorOption{
		goka.WithConsumerGroupBuilder(ConsumerGroupBuilder(opts...)),
		goka.WithConsumerSaramaBuilder(gokaview.ConsumerBuilder(gv...)),
		goka.WithTopicManagerBuilder(gokaview.TopicManagerBuilder(gv...)),
	}
}

// ConsumerGroupBuilder returns a goka consumer group builder whose consumer
// groups read read_committed, with the configuration of
// [ReadCommittedConfig] and the client id goka asks for.
func ConsumerGroupBuilder(opts ...Option) goka.ConsumerGroupBuilder {
	cfg := ReadCommittedConfig(newSettings(opts).sarama)
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		c := *cfg
		c.ClientID = clientID
		return sarama.NewConsumerGroup(brokers, group, &c)
	}
}
