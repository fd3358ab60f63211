package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

// consoleClient returns the console's Kafka client, made on first use and
// closed by Close. It also answers whether a table exists (views.go). The
// server's own client will not do: its one connection per broker (with
// MaxOpenRequests 1, for the idempotent producer) also carries the reply
// reader's long-polling fetches, and every console request would wait
// behind one.
func (s *Server) consoleClient() (sarama.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.console != nil {
		return s.console, nil
	}
	if s.ctx.Err() != nil {
		return nil, errors.New("the server has stopped")
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-console"
	// asking about a topic must not create it
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 10 * time.Second
	c, err := sarama.NewClient(s.cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka at %s: %w", strings.Join(s.cfg.Brokers, ","), err)
	}
	s.console = c
	context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		s.console = nil
		s.mu.Unlock()
		_ = c.Close()
	})
	return c, nil
}

// partitionCounts returns the partition count of each of the topics that
// exists, or of every topic if topics is nil, from one metadata request
// that never creates a topic. Unlike ClusterAdmin.ListTopics it does not
// also describe every topic's configuration.
func partitionCounts(client sarama.Client, topics []string) (map[string]int32, error) {
	out, err := kafkaread.PartitionCounts(client, topics)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	return out, nil
}
