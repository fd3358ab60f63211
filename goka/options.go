package gokainterop

import (
	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/gokaview"
)

// Option configures the Kafka clients that [ViewOptions],
// [ProcessorOptions] and [ConsumerGroupBuilder] build.
type Option func(*settings)

type settings struct {
	sarama       *sarama.Config
	topicManager *goka.TopicManagerConfig
}

// WithSaramaConfig sets the sarama configuration the consumers and topic
// managers are built from (default: goka.DefaultConfig() with Kafka version
// 3.0). It is copied, see [ReadCommittedConfig]. Start from
// goka.DefaultConfig(): goka's processors need its rebalance strategy.
func WithSaramaConfig(c *sarama.Config) Option {
	return func(s *settings) { s.sarama = c }
}

// WithTopicManagerConfig sets the configuration of goka's topic manager
// (default: goka.NewTopicManagerConfig(), which creates topics with
// replication factor 2).
func WithTopicManagerConfig(c *goka.TopicManagerConfig) Option {
	return func(s *settings) { s.topicManager = c }
}

func newSettings(opts []Option) settings {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	return s
}

// gokaview returns the options of package gokaview that s stands for.
func (s settings) gokaview() []gokaview.Option {
	var out []gokaview.Option
	if s.sarama != nil {
		out = append(out, gokaview.WithSaramaConfig(s.sarama))
	}
	if s.topicManager != nil {
		out = append(out, gokaview.WithTopicManagerConfig(s.topicManager))
	}
	return out
}

// ReadCommittedConfig returns a copy of c that reads read_committed: its
// Consumer.IsolationLevel is sarama.ReadCommitted and its version at least
// 0.11, the first with transactions. A nil c stands for goka.DefaultConfig()
// with Kafka version 3.0. The copy is shallow: it shares c's TLS config,
// partitioner and the like.
func ReadCommittedConfig(c *sarama.Config) *sarama.Config {
	var out sarama.Config
	if c != nil {
		out = *c
	} else {
		out = *goka.DefaultConfig()
		out.Version = sarama.V3_0_0_0
	}
	if !out.Version.IsAtLeast(sarama.V0_11_0_0) {
		out.Version = sarama.V0_11_0_0
	}
	out.Consumer.IsolationLevel = sarama.ReadCommitted
	return &out
}
