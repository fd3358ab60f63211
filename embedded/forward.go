package embedded

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// forwardTag is the tagged field that marks a request the embedded broker
// forwarded to its own kfake cluster. Kafka's tagged fields are numbered
// from 0 up; no request uses a number this high.
const forwardTag = 0x73_6c_70 // "slp"

// completer completes answers of kfake that Kafka's own tools cannot read.
// kfake leaves some fields null that Kafka's brokers always fill and that
// the Java admin client reads without a null check, so kafka-topics
// --describe, --create and every tool that describes topics
// (kafka-consumer-groups --reset-offsets, kafka-get-offsets) fail with a
// NullPointerException:
//
//   - DescribeTopicPartitions (KIP-966): EligibleLeaderReplicas and
//     LastKnownELR of every partition are null;
//   - CreateTopics v5+: Configs of a created topic is null when the request
//     set no configs, and the configs it set have the source -1, which the
//     admin client refuses ("id should be positive");
//   - DescribeClientQuotas: Entries is null when there are no quotas
//     (kafka-configs --describe --entity-type clients or users).
//
// The completer intercepts these request kinds with a kfake control
// function: it lets the request sleep (kfake serves other connections
// meanwhile), sends it again over its own connection with forwardTag set
// (the control function passes such requests on to kfake), fills the null
// fields of kfake's answer with empty lists and answers with that. Only
// flexible versions are forwarded: the tag needs them, and the fields do
// not exist before.
type completer struct {
	cl     *kfake.Cluster
	client *rawClient
	logger *slog.Logger
	ctx    context.Context
}

// completions are the request kinds the completer completes, with what it
// does to kfake's answer.
var completions = map[kmsg.Key]func(kmsg.Response){
	kmsg.CreateTopics: func(r kmsg.Response) {
		resp := r.(*kmsg.CreateTopicsResponse)
		for i := range resp.Topics {
			t := &resp.Topics[i]
			if t.ErrorCode == 0 && t.Configs == nil {
				t.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
			}
			// kfake lists the configs the request set, with no source
			for j := range t.Configs {
				if t.Configs[j].Source < 0 {
					t.Configs[j].Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
				}
			}
		}
	},
	kmsg.DescribeClientQuotas: func(r kmsg.Response) {
		if resp := r.(*kmsg.DescribeClientQuotasResponse); resp.ErrorCode == 0 && resp.Entries == nil {
			resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
		}
	},
	kmsg.DescribeTopicPartitions: func(r kmsg.Response) {
		resp := r.(*kmsg.DescribeTopicPartitionsResponse)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				if p.EligibleLeaderReplicas == nil {
					p.EligibleLeaderReplicas = []int32{}
				}
				if p.LastKnownELR == nil {
					p.LastKnownELR = []int32{}
				}
			}
		}
	},
}

// install adds the control functions.
func (c *completer) install() {
	for key, complete := range completions {
		c.cl.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			return c.forward(req, complete)
		})
	}
}

// forward answers req with kfake's answer to it, completed.
func (c *completer) forward(req kmsg.Request, complete func(kmsg.Response)) (kmsg.Response, error, bool) {
	tags := unknownTags(req)
	if tags == nil || !req.IsFlexible() {
		return nil, nil, false
	}
	forwarded := false
	tags.Each(func(tag uint32, _ []byte) { forwarded = forwarded || tag == forwardTag })
	if forwarded {
		return nil, nil, false // ours: kfake answers it
	}
	c.cl.KeepControl()
	tags.Set(forwardTag, nil)
	var (
		resp kmsg.Response
		err  error
	)
	c.cl.SleepControl(func() { resp, err = c.client.request(c.ctx, req) })
	if err != nil {
		// kfake answers the request itself, incomplete
		c.logger.Warn("embedded broker: forwarding a request to kfake", "request", kmsg.NameForKey(req.Key()), "err", err)
		return nil, nil, false
	}
	complete(resp)
	return resp, nil, true
}

// unknownTags returns the tagged fields of the request kinds in
// completions.
func unknownTags(req kmsg.Request) *kmsg.Tags {
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		return &r.UnknownTags
	case *kmsg.DescribeTopicPartitionsRequest:
		return &r.UnknownTags
	case *kmsg.DescribeClientQuotasRequest:
		return &r.UnknownTags
	}
	return nil
}
