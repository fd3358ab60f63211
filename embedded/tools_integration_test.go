//go:build integration

package embedded

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

// TestKafkaToolsWorkOnTheEmbeddedBroker runs Kafka's own command-line tools
// (from the jars that scripts/kafka.sh fetches; needs Java) against the
// embedded broker in its child process. kafka-topics --create and
// --describe failed with NullPointerExceptions (issue 10): kfake left
// fields null that the Java admin client reads. docs/kafka.md lists the
// tools that work.
func TestKafkaToolsWorkOnTheEmbeddedBroker(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatal("needs java (17 or newer) on PATH to run Kafka's tools; scripts/kafka.sh says more")
	}
	b := start(t, Config{Listen: "127.0.0.1:0", Partitions: 3})
	server := "--bootstrap-server=" + b.Addr()
	tool := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("../scripts/kafka.sh", append([]string{"run-class"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "Exception") {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	const (
		topics       = "org.apache.kafka.tools.TopicCommand"
		groups       = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
		consumer     = "org.apache.kafka.tools.consumer.ConsoleConsumer"
		transactions = "org.apache.kafka.tools.TransactionsCommand"
	)

	if out := tool(topics, server, "--create", "--topic=tools", "--partitions=2"); !strings.Contains(out, "Created topic tools.") {
		t.Errorf("kafka-topics --create:\n%s", out)
	}
	if out := tool(topics, server, "--create", "--topic=tools-compacted", "--partitions=1", "--config=cleanup.policy=compact"); !strings.Contains(out, "Created topic tools-compacted.") {
		t.Errorf("kafka-topics --create --config:\n%s", out)
	}
	if list := strings.Fields(tool(topics, server, "--list")); !slices.Contains(list, "tools") || !slices.Contains(list, "tools-compacted") {
		t.Errorf("kafka-topics --list: %q, want tools and tools-compacted", list)
	}
	describe := tool(topics, server, "--describe", "--topic=tools")
	if !strings.Contains(describe, "PartitionCount: 2") ||
		len(regexp.MustCompile(`(?m)Partition: \d+\s+Leader: 0\s+Replicas: 0\s+Isr: 0`).FindAllString(describe, -1)) != 2 {
		t.Errorf("kafka-topics --describe --topic tools:\n%s\nwant 2 partitions led by broker 0", describe)
	}
	if out := tool(topics, server, "--describe", "--topic=tools-compacted"); !strings.Contains(out, "cleanup.policy=compact") {
		t.Errorf("kafka-topics --describe --topic tools-compacted:\n%s\nwant its config", out)
	}

	// a committed transaction and an aborted one
	p, err := txnProducer(b.Addr(), "tools-txn")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tx := range []struct {
		values []string
		commit bool
	}{{[]string{"c1", "c2", "c3"}, true}, {[]string{"aborted"}, false}, {[]string{"c4"}, true}} {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for i, v := range tx.values {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "tools", Partition: int32(i % 2), Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatal(err)
			}
		}
		end := p.CommitTxn
		if !tx.commit {
			end = p.AbortTxn
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
	}
	out := tool(consumer, server, "--topic=tools", "--from-beginning", "--isolation-level=read_committed",
		"--group=tools-reader", "--max-messages=4", "--timeout-ms=30000")
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "c") || line == "aborted" {
			got = append(got, line)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"c1", "c2", "c3", "c4"}) || !strings.Contains(out, "Processed a total of 4 messages") {
		t.Errorf("kafka-console-consumer --isolation-level read_committed got %q, want the 4 committed records:\n%s", got, out)
	}

	if list := strings.Fields(tool(groups, server, "--list")); !slices.Contains(list, "tools-reader") {
		t.Errorf("kafka-consumer-groups --list: %q, want tools-reader", list)
	}
	// the reader's group: two partitions with offsets at their ends
	rows := regexp.MustCompile(`(?m)^tools-reader\s+tools\s+\d+\s+\d+\s+\d+\s+0\s`).FindAllString(tool(groups, server, "--describe", "--group=tools-reader"), -1)
	if len(rows) != 2 {
		t.Errorf("kafka-consumer-groups --describe --group tools-reader: %d partitions with lag 0, want 2", len(rows))
	}
	if out := tool(transactions, server, "list"); !strings.Contains(out, "tools-txn") {
		t.Errorf("kafka-transactions list:\n%s\nwant tools-txn", out)
	}
}
