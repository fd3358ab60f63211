// Package kafkatest holds helpers shared by the module's tests: an
// in-process Kafka broker (kfake), a sarama client for it, a buffer that a
// command writes to while a test reads it, and an in-process run of a
// command.
package kafkatest

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// StartKfake starts an in-process single broker for one test, with topic
// auto-creation, 4 partitions per new topic and short group sessions
// allowed; it is closed when the test ends. It returns its address.
func StartKfake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	return StartKfakeCluster(t, opts...).ListenAddrs()
}

// StartKfakeCluster is StartKfake for a test that controls the broker
// (kfake.Cluster.ControlKey): it returns the cluster.
func StartKfakeCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(4),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.Ports(0),
	}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// LateNewTopics makes c behave as Apache Kafka does right after it has
// created a topic: Kafka confirms the creation before its brokers know the
// topic, and makes it known a while later (issue 10). For lag after a
// CreateTopics request, a metadata request that names one of its topics is
// answered "unknown topic or partition" for every topic it names. Call it
// before any client uses c.
func LateNewTopics(c *kfake.Cluster, lag time.Duration) {
	var brokers []kmsg.MetadataResponseBroker
	for i, addr := range c.ListenAddrs() { // not from a control function: it would deadlock
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(i), host, int32(n)
		brokers = append(brokers, b)
	}
	var mu sync.Mutex
	created := make(map[string]time.Time)
	// control functions that do not handle a request stay installed
	c.ControlKey(kmsg.CreateTopics.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, t := range r.(*kmsg.CreateTopicsRequest).Topics {
			if _, ok := created[t.Topic]; !ok {
				created[t.Topic] = time.Now()
			}
		}
		return nil, nil, false
	})
	c.ControlKey(kmsg.Metadata.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.MetadataRequest)
		mu.Lock()
		young := slices.ContainsFunc(req.Topics, func(t kmsg.MetadataRequestTopic) bool {
			if t.Topic == nil {
				return false
			}
			at, ok := created[*t.Topic]
			return ok && time.Since(at) < lag
		})
		mu.Unlock()
		if !young {
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = brokers
		resp.ControllerID = brokers[0].NodeID
		for _, t := range req.Topics {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// KafkaBrokers returns the Apache Kafka brokers of the integration tests,
// from KAFKA_BROKERS (scripts/kafka.sh start prints it), and fails the test
// without them.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		t.Fatal("KAFKA_BROKERS is not set: start Kafka with scripts/kafka.sh start and export the address it prints")
	}
	return strings.Split(v, ",")
}

// Client returns a sarama client for brokers, closed when the test ends.
func Client(t testing.TB, brokers []string) sarama.Client {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Topics returns the names of the topics on the cluster, sorted, from a
// metadata request for all topics (which creates none).
func Topics(t testing.TB, client sarama.Client) []string {
	t.Helper()
	if err := client.RefreshMetadata(); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	names, err := client.Topics()
	if err != nil {
		t.Fatalf("topics: %v", err)
	}
	slices.Sort(names)
	return names
}

// SyncBuffer is a bytes.Buffer safe for one writer and one reader at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Record is a committed record of a topic.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte // nil for a record without a key
	Value     []byte // nil for a tombstone
	Headers   map[string]string
}

// Records returns every committed record of a topic up to its last stable
// offsets, partition by partition, in offset order.
func Records(t testing.TB, client sarama.Client, topic string) []Record {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions %s: %v", topic, err)
	}
	var out []Record
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			t.Fatalf("ends %s/%d: %v", topic, p, err)
		}
		_, err = kafkaread.ReadCommitted(context.Background(), client, topic, p, start, lso, func(r kafkaread.Record) error {
			rec := Record{Partition: p, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: map[string]string{}}
			for _, h := range r.Headers {
				rec.Headers[string(h.Key)] = string(h.Value)
			}
			out = append(out, rec)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
	}
	return out
}

// ReadCommitted returns the values of every committed record of a topic up
// to its last stable offsets, partition by partition.
func ReadCommitted(t testing.TB, client sarama.Client, topic string) []string {
	t.Helper()
	var out []string
	for _, r := range Records(t, client, topic) {
		out = append(out, string(r.Value))
	}
	return out
}

// CommandResult is what one in-process run of a command printed and
// returned.
type CommandResult struct {
	Out, ErrOut string
	Err         error
}

// RunCommand runs cmd with args in process, as a program's main does but
// without exiting and without printing the error or the usage, with stdin
// (nil: the command's default) as its standard input.
func RunCommand(ctx context.Context, cmd *cobra.Command, stdin io.Reader, args ...string) CommandResult {
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if stdin != nil {
		cmd.SetIn(stdin)
	}
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return CommandResult{Out: out.String(), ErrOut: errOut.String(), Err: err}
}
