package topology

import (
	"errors"
	"fmt"
	"strings"

	"github.com/stateloop/stateloop/functions"
)

// Topic is a Kafka topic name.
type Topic string

// DefaultPartitions is the partition count of internal topics when a
// Topology does not set one.
const DefaultPartitions = 8

// Topology describes one application.
type Topology struct {
	// App names the application: the consumer group and the prefix of
	// every internal topic. Letters, digits, '.', '_' and '-'.
	App string
	// Partitions is the partition count of the loop topic and of every
	// table topic; 0 means DefaultPartitions. It cannot change once the
	// topics exist.
	Partitions int32
	// Functions lists the function types the application runs.
	Functions []functions.TypeName
	// Namespaces lists function namespaces that the application serves as
	// a whole, as a StateFun endpoint bound to "ns/*" does: every function
	// type in them is a function of the application, listed in Functions
	// or not. The table topic of an unlisted type is created when the type
	// is first invoked.
	Namespaces []string
	Ingresses  []Ingress
	Egresses   []Egress
}

// Ingress routes the records of one Kafka topic to function addresses.
type Ingress struct {
	Topic Topic
	// ValueType is the type name given to each record's value; it is how
	// the target function tells the message's type.
	ValueType functions.TypeName
	// Targets are the function types each record is sent to, with the
	// record key (UTF-8) as the id, as StateFun's Kafka ingress does.
	// Ignored when Router is set.
	Targets []functions.TypeName
	// Router, if set, decides the messages a record becomes. Returning an
	// error sends the record to the dead-letter topic.
	Router Router
}

// Record is an ingress record as a Router sees it.
type Record struct {
	Topic     Topic
	Partition int32
	Offset    int64
	Key       []byte // nil for a record without a key
	Value     []byte
	// ValueType is the ValueType of the ingress that read the record
	// (set by [Topology.Route]): the type name a router gives messages
	// that pass the value on unchanged.
	ValueType functions.TypeName
}

// Router turns an ingress record into messages to addresses.
type Router func(rec Record) ([]functions.OutgoingMessage, error)

// Egress is a named output of the application to Kafka.
type Egress struct {
	// ID is the name functions send to (StateFun's egress identifier).
	ID functions.TypeName
	// Topics the egress may write to; a record for another topic fails the
	// invocation. The first one is the default.
	Topics []Topic
	// AnyTopic lets each record name its topic, as a StateFun Kafka egress
	// does; Topics may then be empty, and a record that names no topic
	// goes to the first of Topics (and fails without one). Topics that do
	// not exist are not created by stateloop.
	AnyTopic bool
}

// HasFunction reports whether fn is a function type of the application:
// listed in Functions, or in one of its Namespaces.
func (t Topology) HasFunction(fn functions.TypeName) bool {
	for _, f := range t.Functions {
		if f == fn {
			return true
		}
	}
	ns := fn.Namespace()
	for _, n := range t.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// TableFunction returns the function type whose table topic is topic, if
// topic is the name of a table topic of this application.
func (t Topology) TableFunction(topic string) (functions.TypeName, bool) {
	rest, ok := strings.CutPrefix(topic, t.App+"-")
	if !ok {
		return "", false
	}
	esc, ok := strings.CutSuffix(rest, "-table")
	if !ok {
		return "", false
	}
	fn, err := UnescapeType(esc)
	if err != nil || functions.ValidateFunctionType(fn) != nil || t.TableTopic(fn) != Topic(topic) {
		return "", false
	}
	return fn, true
}

// PartitionCount returns Partitions, or DefaultPartitions when unset.
func (t Topology) PartitionCount() int32 {
	if t.Partitions == 0 {
		return DefaultPartitions
	}
	return t.Partitions
}

// LoopTopic returns the topic of messages to addresses.
func (t Topology) LoopTopic() Topic { return Topic(t.App + "-loop") }

// DLQTopic returns the dead-letter topic.
func (t Topology) DLQTopic() Topic { return Topic(t.App + "-dlq") }

// HTTPCaller is the function type of the callers of messages that came
// through stateloop's HTTP ingress: a message a function sends to such an
// address (ctx.Reply) goes to the replies topic, where the HTTP instance
// that took the request picks it up. Its ids are "<instance>/<request>".
const HTTPCaller functions.TypeName = "stateloop/http"

// IdempotencyTopic returns the topic of the idempotency keys of delivered
// messages, co-partitioned with the loop topic by the target's id.
func (t Topology) IdempotencyTopic() Topic { return Topic(t.App + "-idempotency") }

// RepliesTopic returns the topic of replies to HTTP ingress requests, in
// the partition of the HTTP instance's id.
func (t Topology) RepliesTopic() Topic { return Topic(t.App + "-replies") }

// TimersTopic returns the compacted topic of delayed messages waiting to be
// sent, co-partitioned with the loop topic by the sender's id.
func (t Topology) TimersTopic() Topic { return Topic(t.App + "-timers") }

// InboxTopic returns the compacted topic of the messages that wait in
// their address's inbox (a parked address, a remote call not finished at
// commit), co-partitioned with the loop topic by the address's id.
func (t Topology) InboxTopic() Topic { return Topic(t.App + "-inbox") }

// PositionsTopic returns the compacted topic where each transaction
// records the input positions it consumed, keyed by input partition: the
// application's own record of its progress, next to the consumer group's
// offsets.
func (t Topology) PositionsTopic() Topic { return Topic(t.App + "-positions") }

// Reserved reports whether topic is an internal topic, of this
// application or of Kafka, and names it: the application's loop,
// dead-letter, timers, replies, idempotency, positions and inbox topics, the
// table topic of any function type (listed or not), and every topic whose
// name starts with "__" (Kafka's __consumer_offsets,
// __transaction_state, ...). Ingresses may not read them and egress
// records may not be written to them.
func (t Topology) Reserved(topic Topic) (string, bool) {
	switch topic {
	case t.LoopTopic():
		return "the loop topic of application " + t.App, true
	case t.DLQTopic():
		return "the dead-letter topic of application " + t.App, true
	case t.TimersTopic():
		return "the timers topic of application " + t.App, true
	case t.RepliesTopic():
		return "the replies topic of application " + t.App, true
	case t.IdempotencyTopic():
		return "the idempotency topic of application " + t.App, true
	case t.PositionsTopic():
		return "the positions topic of application " + t.App, true
	case t.InboxTopic():
		return "the inbox topic of application " + t.App, true
	}
	if fn, ok := t.TableFunction(string(topic)); ok {
		return "the state table of function type " + string(fn) + " of application " + t.App, true
	}
	if strings.HasPrefix(string(topic), "__") {
		return "an internal topic of Kafka", true
	}
	return "", false
}

// Group returns the Goka group name of a function type, whose group table
// holds the type's state.
func (t Topology) Group(fn functions.TypeName) string {
	return t.App + "-" + EscapeType(fn)
}

// TableTopic returns the compacted changelog topic of a function type.
func (t Topology) TableTopic(fn functions.TypeName) Topic {
	return Topic(t.Group(fn) + "-table")
}

// EscapeType writes a type name with the characters of Kafka topic names:
// '_' becomes "__" and '/' becomes "_.". The mapping is injective.
func EscapeType(fn functions.TypeName) string {
	var b strings.Builder
	for _, r := range string(fn) {
		switch r {
		case '_':
			b.WriteString("__")
		case '/':
			b.WriteString("_.")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// UnescapeType inverts [EscapeType].
func UnescapeType(s string) (functions.TypeName, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("topology: %q ends in a lone '_'", s)
		}
		i++
		switch s[i] {
		case '_':
			b.WriteByte('_')
		case '.':
			b.WriteByte('/')
		default:
			return "", fmt.Errorf("topology: %q has '_' followed by %q", s, s[i])
		}
	}
	return functions.ParseTypeName(b.String())
}

// Egress returns the egress with the given ID.
func (t Topology) Egress(id functions.TypeName) (Egress, bool) {
	for _, e := range t.Egresses {
		if e.ID == id {
			return e, true
		}
	}
	return Egress{}, false
}

// maxTopicLen is Kafka's limit on topic name length.
const maxTopicLen = 249

// Validate reports every problem of the topology: an invalid app name,
// partition count, function type, ingress or egress, duplicates, and topic
// names that are too long or collide with internal topics.
func (t Topology) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("topology: "+format, args...)) }
	if t.App == "" {
		add("app: empty; name the application")
	} else if !validTopic(t.App) {
		add("app %q: use only letters, digits, '.', '_' and '-'", t.App)
	}
	if t.Partitions < 0 {
		add("partitions %d: must be positive", t.Partitions)
	}
	fns := make(map[functions.TypeName]bool)
	for i, fn := range t.Functions {
		if err := functions.ValidateFunctionType(fn); err != nil {
			add("functions[%d]: %v", i, err)
			continue
		}
		if fns[fn] {
			add("functions[%d]: duplicate function type %s", i, fn)
		}
		fns[fn] = true
		if topic := t.TableTopic(fn); len(topic) > maxTopicLen {
			add("functions[%d]: table topic %q is longer than %d characters", i, topic, maxTopicLen)
		}
	}
	nss := make(map[string]bool)
	for i, ns := range t.Namespaces {
		if err := functions.ValidateFunctionType(functions.TypeName(ns + "/f")); err != nil || strings.Contains(ns, "/") {
			add("namespaces[%d]: %q is not a valid function namespace", i, ns)
			continue
		}
		if nss[ns] {
			add("namespaces[%d]: duplicate namespace %s", i, ns)
		}
		nss[ns] = true
	}
	if len(t.Functions) == 0 && len(t.Namespaces) == 0 {
		add("functions: none; an application needs at least one function type")
	}
	checkTopic := func(field string, topic Topic) {
		switch {
		case topic == "":
			add("%s: empty topic", field)
		case !validTopic(string(topic)) || len(topic) > maxTopicLen:
			add("%s: topic %q is not a valid Kafka topic name", field, topic)
		default:
			if what, ok := t.Reserved(topic); ok && t.App != "" {
				add("%s: topic %q is %s; choose a topic of your own", field, topic, what)
			}
		}
	}
	seenIngress := make(map[Topic]bool)
	for i, in := range t.Ingresses {
		field := fmt.Sprintf("ingresses[%d]", i)
		checkTopic(field, in.Topic)
		if seenIngress[in.Topic] {
			add("%s: topic %q is routed twice", field, in.Topic)
		}
		seenIngress[in.Topic] = true
		if _, err := functions.ParseTypeName(string(in.ValueType)); err != nil {
			add("%s: valueType: %v", field, err)
		}
		if in.Router == nil && len(in.Targets) == 0 {
			add("%s: no targets and no router; records would go nowhere", field)
		}
		for j, target := range in.Targets {
			if !fns[target] && !nss[target.Namespace()] {
				add("%s: targets[%d]: %s is not a function type of this application", field, j, target)
			}
		}
	}
	seenEgress := make(map[functions.TypeName]bool)
	for i, e := range t.Egresses {
		field := fmt.Sprintf("egresses[%d]", i)
		if _, err := functions.ParseTypeName(string(e.ID)); err != nil {
			add("%s: id: %v", field, err)
		}
		if seenEgress[e.ID] {
			add("%s: duplicate egress %s", field, e.ID)
		}
		seenEgress[e.ID] = true
		if len(e.Topics) == 0 && !e.AnyTopic {
			add("%s: no topics; list the topics it writes to, or set AnyTopic to let each record name its topic", field)
		}
		for j, topic := range e.Topics {
			checkTopic(fmt.Sprintf("%s.topics[%d]", field, j), topic)
		}
	}
	return errors.Join(errs...)
}

func validTopic(s string) bool {
	if s == "" || s == "." || s == ".." {
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
