package processor

import (
	"context"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Sender writes messages to function addresses of an application from
// outside it (a CLI, a service, a test). Each Send is one committed record
// on the application's loop topic.
type Sender struct {
	topo topology.Topology
	impl *senderImpl
}

// NewSender connects to the brokers. Close it when done.
func NewSender(brokers []string, topo topology.Topology) (*Sender, error) {
	impl, err := newSenderImpl(brokers, topo)
	if err != nil {
		return nil, err
	}
	return &Sender{topo: topo, impl: impl}, nil
}

// Send writes msg for the address to and waits until the broker has it.
func (s *Sender) Send(ctx context.Context, to functions.Address, msg functions.Message) error {
	return s.impl.send(ctx, to, msg)
}

// Close releases the connections.
func (s *Sender) Close() error { return s.impl.close() }
