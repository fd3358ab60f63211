package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor"
)

// sendOptions are the flags and arguments of `stateloop send`.
type sendOptions struct {
	brokers []string

	// a plain record
	topic  string
	key    string
	hasKey bool

	// a typed message to an address
	app        string
	to         string
	typeName   string
	partitions int32
	newType    bool

	value     string
	hasValue  bool
	valueFile string
}

func newSendCommand() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send (--topic TOPIC [--key KEY] | --app APP --to TYPE/ID --type TYPENAME) [VALUE]",
		Short: "Write a record to a topic, or a message to a function address",
		Long: `Write one record to a Kafka topic, or one typed message to a function address
of a running application.

With --topic, VALUE is written as UTF-8 text, with --key as the record key (no
--key writes a record without a key). Applications read their ingress topics
this way: for the greeter, the key and the value are the name.

With --app, --to and --type, the message goes straight to the address
namespace/name/id of the application APP, through the application's loop
topic (APP-loop), bypassing its ingresses. For the types
io.statefun.types/string, /long, /int, /bool, /double and /float, VALUE is
parsed (e.g. 42, true, 1.5) and encoded the way StateFun encodes these types;
for any other type name its bytes are sent as they are. The partition count of
the application is read from its loop topic, which must exist (start the
application once); --partitions only double-checks it. The function type
must be one of the application's: it must have a table topic
(APP-<type>-table). A type of a namespace that the application serves as a
whole (module.yaml "ns/*") gets its table when it is first invoked; to send
the first message to such a type, pass --new-type.

--value-file FILE sends the bytes of FILE instead of VALUE; - reads stdin.`,
		Example: `  # greet Alice: a record on the greeter's ingress topic
  stateloop send --topic names --key Alice Alice

  # the same name as a message straight to the function address
  stateloop send --app greeter --to greeter/greet/Alice --type greeter/name Alice

  # a StateFun long to an address of your application
  stateloop send --app shop --to shop/counter/c1 --type io.statefun.types/long 42

  # a record whose value is the content of a file
  stateloop send --topic orders --key o-17 --value-file order.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.hasKey = cmd.Flags().Changed("key")
			if len(args) > 0 {
				o.value, o.hasValue = args[0], true
			}
			if err := o.validate(args); err != nil {
				return err
			}
			return o.send(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	brokersFlag(fs, &o.brokers)
	fs.StringVar(&o.topic, "topic", "", "topic to write a plain record to")
	fs.StringVar(&o.key, "key", "", "key of the record (with --topic)")
	fs.StringVar(&o.app, "app", "", "application to send a message to (with --to)")
	fs.StringVar(&o.to, "to", "", "function address namespace/name/id to send a message to (with --app)")
	fs.StringVar(&o.typeName, "type", "", "type name of the message, e.g. io.statefun.types/string (with --to)")
	fs.Int32Var(&o.partitions, "partitions", 0, "partition count of the application (with --to); default: read from its loop topic")
	fs.BoolVar(&o.newType, "new-type", false, "send even though the application has no table for the type of --to (a type of a namespace it serves as a whole that was never invoked)")
	fs.StringVar(&o.valueFile, "value-file", "", "send the bytes of this file instead of VALUE; - reads stdin")
	return cmd
}

// validate reports every problem of the flags and arguments.
func (o *sendOptions) validate(args []string) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("stateloop send: "+format, a...)) }
	if err := app.CheckBrokers("stateloop send", o.brokers); err != nil {
		errs = append(errs, err)
	}
	switch {
	case len(args) > 1:
		add("got %d arguments, want one VALUE; quote a value that has spaces", len(args))
	case o.hasValue && o.valueFile != "":
		add("got both VALUE and --value-file; pass one")
	case !o.hasValue && o.valueFile == "":
		add("nothing to send; pass VALUE or --value-file")
	}
	switch {
	case o.topic != "" && o.to != "":
		add("got both --topic and --to; pass --topic for a record, or --app, --to and --type for a message to a function")
	case o.topic == "" && o.to == "":
		add("no destination; pass --topic for a record, or --app, --to and --type for a message to a function")
	case o.topic != "":
		for _, f := range []struct {
			name string
			set  bool
		}{{"--app", o.app != ""}, {"--type", o.typeName != ""}, {"--partitions", o.partitions != 0}} {
			if f.set {
				add("%s is for messages to functions (with --to), not for records (with --topic)", f.name)
			}
		}
	default:
		if o.hasKey {
			add("--key is for records (with --topic); a message goes to the address given by --to")
		}
		if o.app == "" {
			add("--app: missing; name the application that runs %s", o.to)
		}
		if _, err := parseAddress(o.to); err != nil {
			add("--to %q: %v", o.to, err)
		}
		if o.typeName == "" {
			add("--type: missing; name the message type, e.g. --type io.statefun.types/string")
		} else if _, err := functions.ParseTypeName(o.typeName); err != nil {
			add("--type: %v", err)
		}
		if o.partitions < 0 {
			add("--partitions %d: must be positive", o.partitions)
		}
	}
	return errors.Join(errs...)
}

// parseAddress parses "namespace/name/id"; the id is everything after the
// second '/'.
func parseAddress(s string) (functions.Address, error) {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) != 3 || parts[2] == "" {
		return functions.Address{}, errors.New("want namespace/name/id, e.g. greeter/greet/Alice")
	}
	a := functions.Address{Type: functions.TypeName(parts[0] + "/" + parts[1]), ID: parts[2]}
	if err := a.Validate(); err != nil {
		return functions.Address{}, err
	}
	return a, nil
}

func (o *sendOptions) readValue(stdin io.Reader) ([]byte, error) {
	switch o.valueFile {
	case "":
		return []byte(o.value), nil
	case "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("stateloop send: read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(o.valueFile)
	if err != nil {
		return nil, fmt.Errorf("stateloop send: %w", err)
	}
	return b, nil
}

func (o *sendOptions) send(ctx context.Context, stdin io.Reader, out io.Writer) error {
	value, err := o.readValue(stdin)
	if err != nil {
		return err
	}
	if o.topic != "" {
		return o.sendRecord(value, out)
	}
	return o.sendMessage(ctx, value, out)
}

// sendRecord writes a plain record; the topic is created if the broker
// creates topics on first use.
func (o *sendOptions) sendRecord(value []byte, out io.Writer) error {
	sc := clientConfig()
	sc.Metadata.AllowAutoTopicCreation = true
	client, err := connect(o.brokers, sc)
	if err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	defer client.Close()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	defer sp.Close()
	msg := &sarama.ProducerMessage{Topic: o.topic, Value: sarama.ByteEncoder(value)}
	if o.hasKey {
		msg.Key = sarama.StringEncoder(o.key)
	}
	part, off, err := sp.SendMessage(msg)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return fmt.Errorf("stateloop send: topic %s does not exist and the broker does not create topics on first use: "+
			"check --topic, start the application that reads it (it creates its topics), or create the topic: %w", o.topic, err)
	}
	if err != nil {
		return fmt.Errorf("stateloop send: write to topic %s: %w", o.topic, err)
	}
	fmt.Fprintf(out, "sent %d bytes to topic %s, partition %d, offset %d\n", len(value), o.topic, part, off)
	return nil
}

// sendMessage writes a typed message to a function address through the
// application's loop topic.
func (o *sendOptions) sendMessage(ctx context.Context, value []byte, out io.Writer) error {
	to, err := parseAddress(o.to)
	if err != nil {
		return fmt.Errorf("stateloop send: --to %q: %w", o.to, err)
	}
	msg, err := encodeMessage(functions.TypeName(o.typeName), value)
	if err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	client, err := connect(o.brokers, clientConfig())
	if err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	a, err := findApplication(client, o.brokers, o.app)
	client.Close()
	if err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	// Regression (issue 10): a message to a type the application does not
	// have was written, and the application dead-lettered it.
	if err := a.checkType(to.Type); err != nil && !o.newType {
		return fmt.Errorf("stateloop send: %w; check --to, or, for a type of a namespace the application serves as a whole "+
			"(module.yaml \"%s/*\") that was never invoked and so has no table yet, pass --new-type", err, to.Type.Namespace())
	}
	topo := a.topo
	loop := string(topo.LoopTopic())
	if o.partitions != 0 && o.partitions != topo.Partitions {
		return fmt.Errorf("stateloop send: --partitions %d, but topic %s has %d partitions: pass --partitions %d or leave it out",
			o.partitions, loop, topo.Partitions, topo.Partitions)
	}
	s, err := processor.NewSender(o.brokers, topo)
	if err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	defer s.Close()
	if err := s.Send(ctx, to, msg); err != nil {
		return fmt.Errorf("stateloop send: %w", err)
	}
	fmt.Fprintf(out, "sent %s message to %s (application %s, topic %s)\n", msg.TypeName(), to, o.app, loop)
	return nil
}

// encodeMessage builds a message of type t from value: parsed and encoded
// with StateFun's encoding for the io.statefun.types types, as it is for
// any other type (codec.ParseText).
func encodeMessage(t functions.TypeName, value []byte) (functions.Message, error) {
	b, err := codec.ParseText(string(t), value)
	if err != nil {
		return functions.Message{}, err
	}
	return functions.NewMessage(t, b), nil
}
