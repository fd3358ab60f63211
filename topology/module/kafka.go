package module

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

func ingressKeys(withID bool) keySpec {
	keys := []string{"address", "consumerGroupId", "topics", "autoOffsetResetPosition", "startupPosition", "properties"}
	hints := map[string]string{
		"topic":     "use topics, a list of entries with topic, valueType and targets",
		"valueType": "valueType goes in each entry of topics",
		"targets":   "targets go in each entry of topics",
	}
	if withID {
		keys = append([]string{"id"}, keys...)
	} else {
		hints["id"] = "in a single-document file (version: ...) the id goes in meta.id"
	}
	return keySpec{keys: keys, hints: hints}
}

var topicKeys = keySpec{keys: []string{"topic", "valueType", "targets"},
	hints: map[string]string{"typeUrl": "typeUrl is the key of the StateFun 2.x formats; here write valueType"}}

var topicKeys2 = keySpec{keys: []string{"topic", "typeUrl", "targets"},
	hints: map[string]string{"valueType": "valueType is the key of StateFun 3.x; a StateFun 2.x file names the type with typeUrl"}}

var startupKeys = keySpec{keys: []string{"type", "offsets", "date"}}

// startupDateLayout is StateFun's "yyyy-MM-dd HH:mm:ss.SSS Z".
const startupDateLayout = "2006-01-02 15:04:05.000 -0700"

const startupTypes = "earliest, latest, group-offsets, specific-offsets or date"

// kafkaIngress reads io.statefun.kafka.v1/ingress (StateFun's
// RoutableKafkaIngressSpec).
func (c *component) kafkaIngress() *KafkaIngress {
	spec := c.mapping(c.spec, ingressKeys(c.id == nil))
	in := &KafkaIngress{Pos: c.pos(c.spec.node), AutoOffsetReset: "latest", StartupPosition: StartupPosition{Type: StartupLatest}}
	idf := c.legacyOr(spec, "an ingress id like \"com.example/orders\"")
	if id, ok := c.typeNameID(idf, "ingress", "com.example/orders"); ok {
		in.ID = id
		c.register(c.p.ingress, id, idf, "ingress")
	}
	in.Properties = c.properties(spec.get("properties"))
	in.Address = c.address(spec.get("address"), in.Properties)
	in.ConsumerGroupID = in.Properties["group.id"]
	if s, ok := c.str(spec.get("consumerGroupId"), "a consumer group id"); ok {
		if p, set := in.Properties["group.id"]; set && p != s {
			c.overridden("group.id", "consumerGroupId is set and wins, as in StateFun")
		}
		in.ConsumerGroupID = s
	}
	if _, set := in.Properties["auto.offset.reset"]; set {
		c.overridden("auto.offset.reset", "StateFun always sets it from autoOffsetResetPosition (default latest)")
	}
	if f := spec.get("autoOffsetResetPosition"); f.present() {
		if s, ok := c.str(f, "earliest or latest"); ok {
			switch v := strings.ToLower(s); v {
			case "earliest", "latest":
				in.AutoOffsetReset = v
			default:
				c.errorf(f.node, f.path, "%q; want earliest or latest", s)
			}
		}
	}
	tf := c.required(spec, "topics", "a list of entries with topic, valueType and targets")
	items, _ := c.list(tf, "a list of entries with topic, valueType and targets")
	if tf.present() && tf.node.Kind == yaml.SequenceNode && len(items) == 0 {
		c.errorf(tf.node, tf.path, "empty; an ingress reads at least one topic")
	}
	seen := make(map[string]bool)
	for _, it := range items {
		if t, ok := c.ingressTopic(it, seen); ok {
			in.Topics = append(in.Topics, t)
		}
	}
	if f := spec.get("startupPosition"); f.present() {
		in.StartupPosition = c.startupPosition(f, seen)
	}
	return in
}

// legacyOr returns the id field: from meta in the 3.0 format, else the
// spec's required id.
func (c *component) legacyOr(spec mapping, want string) field {
	if c.id != nil {
		return *c.id
	}
	return c.required(spec, "id", want)
}

// register records an id and reports it when an earlier document used it.
func (c *component) register(seen map[functions.TypeName]Position, id functions.TypeName, f field, what string) {
	if first, dup := seen[id]; dup {
		c.errorf(f.node, f.path, "%s id %s is already used (%s); ids must be unique", what, id, where(first))
		return
	}
	seen[id] = c.pos(f.node)
}

func (c *component) ingressTopic(f field, seen map[string]bool) (IngressTopic, bool) {
	keys := topicKeys
	if c.v2 != "" {
		keys = topicKeys2
	}
	m := c.mapping(f, keys)
	t := IngressTopic{Pos: c.pos(f.node)}
	ok := true
	tf := c.required(m, "topic", `a Kafka topic name like "orders"`)
	if tf.present() && tf.node.Kind == yaml.SequenceNode {
		c.errorf(tf.node, tf.path, "want one topic name; StateFun reads a single topic per entry, so write one entry per topic")
		ok = false
	} else if s, good := c.str(tf, `a Kafka topic name like "orders"`); good {
		if !validTopic(s) {
			c.errorf(tf.node, tf.path, "%q is not a Kafka topic name; use letters, digits, '.', '_' and '-', at most 249", s)
			ok = false
		} else {
			t.Topic = topology.Topic(s)
			if seen[s] {
				c.errorf(tf.node, tf.path, "topic %s is listed twice in this ingress; list it once with all its targets", s)
				ok = false
			} else if first, dup := c.p.topics[s]; dup {
				c.errorf(tf.node, tf.path, "topic %s is already read by another ingress (%s); stateloop routes each topic once", s, where(first))
				ok = false
			}
			seen[s] = true
			if _, dup := c.p.topics[s]; !dup {
				c.p.topics[s] = c.pos(tf.node)
			}
		}
	} else {
		ok = false
	}
	if c.v2 != "" {
		t.ValueType = c.typeURL(c.required(m, "typeUrl", `a protobuf type URL like "type.googleapis.com/com.example.Order"`))
		ok = ok && t.ValueType != ""
	} else {
		vf := c.required(m, "valueType", `a type name like "com.example/Order"`)
		if s, good := c.str(vf, `a type name like "com.example/Order"`); good {
			vt, err := functions.ParseTypeName(s)
			if err != nil {
				c.errorf(vf.node, vf.path, "%q is not a type name; want a type name like \"com.example/Order\" (namespace/name)", s)
				ok = false
			}
			t.ValueType = vt
		} else {
			ok = false
		}
	}
	gf := c.required(m, "targets", `a list of function types like "com.example/greeter"`)
	targets, good := c.list(gf, `a list of function types like "com.example/greeter"`)
	if good && len(targets) == 0 {
		c.errorf(gf.node, gf.path, "empty; records would go nowhere: list at least one function type")
	}
	dups := make(map[functions.TypeName]bool)
	for _, g := range targets {
		fn, good := c.functionType(g)
		if !good {
			continue
		}
		if dups[fn] {
			c.errorf(g.node, g.path, "%s is listed twice; each record would reach it twice", fn)
			continue
		}
		dups[fn] = true
		t.Targets = append(t.Targets, fn)
	}
	return t, ok
}

// typeURL reads the typeUrl of a routable ingress topic of a StateFun 2.x
// file: the type URL of the protobuf Any that each record's value is
// wrapped in, which is the type name of the messages in stateloop. It
// must have a '/', which StateFun 2.x does not require: the SDKs' Unpack
// and Is read only the part after the last '/'.
func (c *component) typeURL(f field) functions.TypeName {
	s, ok := c.str(f, "a protobuf type URL")
	if !ok {
		return ""
	}
	t, err := functions.ParseTypeName(s)
	switch {
	case err == nil:
		return t
	case !strings.Contains(s, "/") && s != "":
		c.errorf(f.node, f.path, "%q has no '/'; write %q: stateloop needs a namespace/name, and the SDKs' Unpack and Is read only the part after the last '/'", s, "type.googleapis.com/"+s)
	default:
		c.errorf(f.node, f.path, "%q is not a type URL; want one like \"type.googleapis.com/com.example.Order\"", s)
	}
	return ""
}

// startupPosition reads the startup position; topics are the topics of
// the ingress, which specific offsets should name.
func (c *component) startupPosition(f field, topics map[string]bool) StartupPosition {
	m := c.mapping(f, startupKeys)
	sp := StartupPosition{Type: StartupLatest}
	tf := c.required(m, "type", startupTypes)
	typ, ok := c.str(tf, startupTypes)
	if !ok {
		return sp
	}
	offsets, date := m.get("offsets"), m.get("date")
	switch typ {
	case StartupEarliest, StartupLatest, StartupGroupOffsets:
	case StartupSpecificOffsets:
		c.required(m, "offsets", `a list like "- orders/0: 42", one entry per partition`)
		sp.Offsets = c.offsets(offsets, topics)
	case StartupDate:
		df := c.required(m, "date", `a date like "2020-02-01 04:15:00.000 +0000" (yyyy-MM-dd HH:mm:ss.SSS Z)`)
		if s, ok := c.str(df, "a date"); ok {
			t, err := time.Parse(startupDateLayout, s)
			if err != nil {
				c.errorf(df.node, df.path, "%q is not a date of the form yyyy-MM-dd HH:mm:ss.SSS Z, like \"2020-02-01 04:15:00.000 +0000\"", s)
			}
			sp.Date = t
		}
	default:
		msg := fmt.Sprintf("unknown startup position %q; want %s", typ, startupTypes)
		if s := suggest(typ, []string{StartupEarliest, StartupLatest, StartupGroupOffsets, StartupSpecificOffsets, StartupDate}); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		c.errorf(tf.node, tf.path, "%s", msg)
		return sp
	}
	if offsets.present() && typ != StartupSpecificOffsets {
		c.errorf(offsets.key, offsets.path, "only used with type specific-offsets")
	}
	if date.present() && typ != StartupDate {
		c.errorf(date.key, date.path, "only used with type date")
	}
	sp.Type = typ
	return sp
}

// offsets reads "- <topic>/<partition>: <offset>" entries.
func (c *component) offsets(f field, topics map[string]bool) []PartitionOffset {
	var out []PartitionOffset
	seen := make(map[string]bool)
	for _, kv := range c.singleKeyMaps(f, "orders/0: 42") {
		tp := kv.key.Value
		i := strings.LastIndexByte(tp, '/')
		part, err := strconv.ParseInt(tp[i+1:], 10, 32)
		if i <= 0 || err != nil || part < 0 {
			c.errorf(kv.key, kv.path, "%q is not <topic>/<partition>, like \"orders/0\"", tp)
			continue
		}
		off, err := strconv.ParseInt(kv.value.Value, 10, 64)
		if err != nil || off < 0 {
			c.errorf(kv.value, kv.path, "offset %q; want a whole number, 0 or more", kv.value.Value)
			continue
		}
		if seen[tp] {
			c.errorf(kv.key, kv.path, "partition %s is listed twice", tp)
			continue
		}
		seen[tp] = true
		if !topics[tp[:i]] {
			c.warnf(kv.key, kv.path, "ignored: topic %s is not read by this ingress", tp[:i])
		}
		out = append(out, PartitionOffset{Topic: topology.Topic(tp[:i]), Partition: int32(part), Offset: off})
	}
	return out
}

// properties reads Kafka client properties, a list of single-key mappings.
func (c *component) properties(f field) map[string]string {
	props := make(map[string]string)
	for _, kv := range c.singleKeyMaps(f, "max.poll.records: 500") {
		k := kv.key.Value
		if _, dup := props[k]; dup {
			c.errorf(kv.key, kv.path, "property %s is set twice", k)
			continue
		}
		if isNull(kv.value) {
			c.errorf(kv.value, kv.path, "property %s has no value", k)
			continue
		}
		props[k] = kv.value.Value
	}
	if len(props) == 0 {
		return nil
	}
	return props
}

// address reads a bootstrap server list, "host:port[,host:port...]",
// from the address key or else the bootstrap.servers property. The key
// wins, as in StateFun.
func (c *component) address(f field, props map[string]string) []string {
	s, ok := c.str(f, `a list of brokers like "kafka:9092" or "k1:9092,k2:9092"`)
	if !ok {
		s, ok = props["bootstrap.servers"]
		if !ok {
			return nil
		}
		f = c.propertyField("bootstrap.servers")
	} else if p, set := props["bootstrap.servers"]; set && p != s {
		c.overridden("bootstrap.servers", "address is set and wins, as in StateFun")
	}
	var out []string
	for _, hp := range strings.Split(s, ",") {
		hp = strings.TrimSpace(hp)
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			c.errorf(f.node, f.path, "%q is not host:port; want a list of brokers like \"kafka:9092\" or \"k1:9092,k2:9092\"", hp)
			return nil
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > math.MaxUint16 {
			c.errorf(f.node, f.path, "%q: port %q; want a number from 1 to 65535", hp, port)
			return nil
		}
		out = append(out, hp)
	}
	return out
}

// overridden warns that a Kafka property is ignored, and why.
func (c *component) overridden(key, why string) {
	if pf := c.propertyField(key); pf.present() {
		c.warnf(pf.key, pf.path, "ignored: %s", why)
	}
}

// propertyField finds the properties entry with the given key, for
// positions in messages about it; it is not present when there is none.
func (c *component) propertyField(key string) field {
	spec := c.spec.node
	for i := 0; spec != nil && spec.Kind == yaml.MappingNode && i+1 < len(spec.Content); i += 2 {
		if k := resolve(spec.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == "properties" {
			list := resolve(spec.Content[i+1])
			for j, it := range list.Content {
				it = resolve(it)
				if it != nil && it.Kind == yaml.MappingNode && len(it.Content) == 2 && resolve(it.Content[0]).Value == key {
					return field{path: fmt.Sprintf("%s.properties[%d]", c.spec.path, j), key: resolve(it.Content[0]), node: resolve(it.Content[1])}
				}
			}
		}
	}
	return field{}
}

// validTopic is Kafka's rule for topic names.
func validTopic(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 249 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var egressKeys = keySpec{
	keys: []string{"id", "address", "deliverySemantic", "properties"},
	hints: map[string]string{
		"transactionTimeout": "transactionTimeout goes under deliverySemantic",
		"topics":             "a Kafka egress declares no topics: each record names its own topic",
		"topic":              "a Kafka egress declares no topics: each record names its own topic",
	},
}

var deliveryKeys = keySpec{keys: []string{"type", "transactionTimeout", "transactionTimeoutMillis"}}

var deliveryKeys2 = keySpec{keys: []string{"type", "transactionTimeoutMillis"},
	hints: map[string]string{"transactionTimeout": "StateFun 2.x reads transactionTimeoutMillis, a whole number of milliseconds"}}

const deliveryTypes = "exactly-once, at-least-once or none"

// kafkaEgress reads io.statefun.kafka.v1/egress (StateFun's
// GenericKafkaEgressSpec).
func (c *component) kafkaEgress() *KafkaEgress {
	keys := egressKeys
	if c.id != nil {
		keys = keySpec{keys: egressKeys.keys[1:], hints: map[string]string{"id": "in a single-document file (version: ...) the id goes in meta.id"}}
		for k, v := range egressKeys.hints {
			keys.hints[k] = v
		}
	}
	spec := c.mapping(c.spec, keys)
	e := &KafkaEgress{Pos: c.pos(c.spec.node), DeliverySemantic: DeliveryAtLeastOnce}
	idf := c.legacyOr(spec, "an egress id like \"com.example/receipts\"")
	if id, ok := c.typeNameID(idf, "egress", "com.example/receipts"); ok {
		e.ID = id
		c.register(c.p.egress, id, idf, "egress")
	}
	e.Properties = c.properties(spec.get("properties"))
	e.Address = c.address(spec.get("address"), e.Properties)
	df := spec.get("deliverySemantic")
	if !df.present() || isNull(df.node) {
		return e
	}
	dk := deliveryKeys
	if c.v2 != "" {
		dk = deliveryKeys2
	}
	m := c.mapping(df, dk)
	tf := c.required(m, "type", deliveryTypes)
	typ, ok := c.str(tf, deliveryTypes)
	if !ok {
		return e
	}
	timeout, millis := m.get("transactionTimeout"), m.get("transactionTimeoutMillis")
	switch typ {
	case DeliveryExactlyOnce:
		e.DeliverySemantic = typ
		if _, set := e.Properties["transaction.timeout.ms"]; set {
			c.overridden("transaction.timeout.ms", "StateFun sets it from the transaction timeout of exactly-once")
		}
		// The deprecated millisecond form wins, as in StateFun.
		if millis.present() {
			if v, ok := c.integer(millis, "a whole number of milliseconds"); ok {
				if v <= 0 {
					c.errorf(millis.node, millis.path, "must be more than 0")
				} else {
					e.TransactionTimeout = time.Duration(min(v, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
				}
			}
			if timeout.present() {
				c.warnf(timeout.key, timeout.path, "ignored: transactionTimeoutMillis is set and wins, as in StateFun")
			}
		} else if timeout.present() {
			if v, ok := c.positiveDuration(timeout); ok {
				e.TransactionTimeout = v
			}
		} else if c.v2 != "" {
			c.errorf(m.node, millis.path, "missing; exactly-once needs a transaction timeout in milliseconds, like 900000")
		} else {
			c.errorf(m.node, timeout.path, "missing; exactly-once needs a transaction timeout, a duration like \"15min\"")
		}
	case DeliveryAtLeastOnce, DeliveryNone:
		e.DeliverySemantic = typ
		for _, g := range []field{timeout, millis} {
			if g.present() {
				c.warnf(g.key, g.path, "ignored: only used with type exactly-once")
			}
		}
	default:
		msg := fmt.Sprintf("unknown delivery semantic %q; want %s", typ, deliveryTypes)
		if s := suggest(typ, []string{DeliveryExactlyOnce, DeliveryAtLeastOnce, DeliveryNone}); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		c.errorf(tf.node, tf.path, "%s", msg)
	}
	return e
}
