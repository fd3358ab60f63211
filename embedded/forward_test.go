package embedded

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAnswersKafkaToolsCanRead pins down the fields that Kafka's Java admin
// client reads without a null check, which kfake left null: kafka-topics
// --create and --describe failed with a NullPointerException on the
// embedded broker (issue 10), and so did every tool that describes topics.
// The requests are the ones the Java tools send (same versions).
func TestAnswersKafkaToolsCanRead(t *testing.T) {
	b := start(t, Config{Listen: "127.0.0.1:0", Partitions: 3})
	c := newRawClient(b.Addr())
	defer c.close()
	ctx := context.Background()
	request := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		resp, err := c.request(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		return resp
	}

	create := func(topic string, configs map[string]string) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.TimeoutMillis = 30000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 2, -1
		for k, v := range configs {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name, rc.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
		return request(req).(*kmsg.CreateTopicsResponse).Topics[0]
	}
	plain := create("plain", nil)
	if err := kerr.ErrorForCode(plain.ErrorCode); err != nil || plain.NumPartitions != 2 {
		t.Fatalf("create plain: %v, %d partitions", err, plain.NumPartitions)
	}
	if plain.Configs == nil {
		t.Error("CreateTopics answered null configs for a topic created without configs")
	}
	compacted := create("compacted", map[string]string{"cleanup.policy": "compact"})
	if err := kerr.ErrorForCode(compacted.ErrorCode); err != nil {
		t.Fatalf("create compacted: %v", err)
	}
	if len(compacted.Configs) != 1 || compacted.Configs[0].Source != int8(kmsg.ConfigSourceDynamicTopicConfig) {
		t.Errorf("CreateTopics configs of a topic created with cleanup.policy: %+v, want it with the source DYNAMIC_TOPIC_CONFIG", compacted.Configs)
	}
	// the request went to kfake exactly once
	if again := create("plain", nil); again.ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Errorf("creating plain again: %v, want TOPIC_ALREADY_EXISTS", kerr.ErrorForCode(again.ErrorCode))
	}

	describe := kmsg.NewPtrDescribeTopicPartitionsRequest()
	describe.ResponsePartitionLimit = 2000
	for _, topic := range []string{"plain", "compacted"} {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = topic
		describe.Topics = append(describe.Topics, rt)
	}
	topics := request(describe).(*kmsg.DescribeTopicPartitionsResponse).Topics
	partitions := 0
	for _, topic := range topics {
		for _, p := range topic.Partitions {
			partitions++
			if p.EligibleLeaderReplicas == nil || p.LastKnownELR == nil {
				t.Errorf("DescribeTopicPartitions %s/%d: eligible leader replicas %v, last known %v; want empty lists, not null",
					*topic.Topic, p.Partition, p.EligibleLeaderReplicas, p.LastKnownELR)
			}
		}
	}
	if partitions != 4 {
		t.Errorf("DescribeTopicPartitions described %d partitions, want 4", partitions)
	}

	quotas := kmsg.NewPtrDescribeClientQuotasRequest()
	quotas.Version = 1
	if resp := request(quotas).(*kmsg.DescribeClientQuotasResponse); resp.ErrorCode != 0 || resp.Entries == nil {
		t.Errorf("DescribeClientQuotas: %v, entries %v; want no error and an empty list", kerr.ErrorForCode(resp.ErrorCode), resp.Entries)
	}
}

// TestForwardedRequestsFromManyClients runs completed requests from several
// connections at once: the forwarding must neither mix answers up nor
// stall kfake.
func TestForwardedRequestsFromManyClients(t *testing.T) {
	b := start(t, Config{Listen: "127.0.0.1:0", Partitions: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newRawClient(b.Addr())
			defer c.close()
			topic := fmt.Sprintf("topic-%d", i)
			for j := range 20 {
				var req kmsg.Request
				if j == 0 {
					cr := kmsg.NewPtrCreateTopicsRequest()
					cr.Version = 7
					rt := kmsg.NewCreateTopicsRequestTopic()
					rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(i+1), -1
					cr.Topics = append(cr.Topics, rt)
					req = cr
				} else {
					dr := kmsg.NewPtrDescribeTopicPartitionsRequest()
					dr.ResponsePartitionLimit = 2000
					rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
					rt.Topic = topic
					dr.Topics = append(dr.Topics, rt)
					req = dr
				}
				resp, err := c.request(context.Background(), req)
				if err != nil {
					errs <- err
					return
				}
				if dr, ok := resp.(*kmsg.DescribeTopicPartitionsResponse); ok {
					if len(dr.Topics) != 1 || *dr.Topics[0].Topic != topic || len(dr.Topics[0].Partitions) != i+1 {
						errs <- fmt.Errorf("client %d asked for %s with %d partitions and got %+v", i, topic, i+1, dr.Topics)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
