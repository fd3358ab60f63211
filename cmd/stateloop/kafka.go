package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/ops"
)

// clientConfig is the sarama configuration of send and consume
// (ops.ClientConfig): it never creates topics by asking for their
// metadata, so that reading an application's topic before the application
// created it cannot give it the wrong partition count. Plain records go to
// the partition of their key's hash, as other producers write them.
func clientConfig() *sarama.Config {
	sc := ops.ClientConfig("stateloop-cli")
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Consumer.Return.Errors = true
	return sc
}

// connect opens a client, explaining what to do when Kafka is not there.
func connect(brokers []string, sc *sarama.Config) (sarama.Client, error) {
	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to Kafka at %s: is Kafka running there? start one with `stateloop broker` "+
			"(or `stateloop run greeter`), or pass --brokers: %w", strings.Join(brokers, ","), err)
	}
	return c, nil
}

// partitions returns the partitions of topic, and false if it does not
// exist.
func partitions(client sarama.Client, topic string) ([]int32, bool, error) {
	if err := client.RefreshMetadata(); err != nil {
		return nil, false, fmt.Errorf("read the topics of the cluster: %w", err)
	}
	topics, err := client.Topics()
	if err != nil {
		return nil, false, fmt.Errorf("read the topics of the cluster: %w", err)
	}
	if !slices.Contains(topics, topic) {
		return nil, false, nil
	}
	ps, err := client.Partitions(topic)
	if err != nil {
		return nil, false, fmt.Errorf("read the partitions of topic %s: %w", topic, err)
	}
	return ps, true, nil
}
