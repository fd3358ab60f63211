package processor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

type senderImpl struct {
	topo topology.Topology
	sp   sarama.SyncProducer
}

func newSenderImpl(brokers []string, topo topology.Topology) (*senderImpl, error) {
	if topo.App == "" {
		return nil, fmt.Errorf("processor: sender: the topology has no app name")
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-sender-" + topo.App
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Net.MaxOpenRequests = 1
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	sp, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("processor: sender: connect to Kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	return &senderImpl{topo: topo, sp: sp}, nil
}

func (s *senderImpl) send(ctx context.Context, to functions.Address, msg functions.Message) error {
	if err := to.Validate(); err != nil {
		return fmt.Errorf("processor: send: %w", err)
	}
	if err := msg.Err(); err != nil {
		return fmt.Errorf("processor: send: %w", err)
	}
	if _, err := functions.ParseTypeName(string(msg.TypeName())); err != nil {
		return fmt.Errorf("processor: send: message type: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, _, err := s.sp.SendMessage(&sarama.ProducerMessage{
		Topic:     string(s.topo.LoopTopic()),
		Partition: partitionFor(to.ID, s.topo.PartitionCount()),
		Key:       sarama.StringEncoder(to.ID),
		Value:     sarama.ByteEncoder(wire.AppendEnvelope(nil, wire.Envelope{Target: to, Argument: msg})),
	})
	if err != nil {
		return fmt.Errorf("processor: send to %s: %w", to, err)
	}
	return nil
}

func (s *senderImpl) close() error { return s.sp.Close() }
