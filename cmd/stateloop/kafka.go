package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// clientConfig is the sarama configuration of send and consume. It never
// creates topics by asking for their metadata, so that reading an
// application's topic before the application created it cannot give it the
// wrong partition count.
func clientConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-cli"
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Metadata.Retry.Max = 2
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	sc.Net.DialTimeout = 5 * time.Second
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
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
