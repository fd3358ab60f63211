package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOtherClientsCanUseTheBroker uses franz-go's kgo, a Kafka client that
// shares no code with sarama (which the runtime uses), against the
// embedded broker in its child process: a transactional produce and a
// read_committed consume, as kcat or a Java client would do.
func TestOtherClientsCanUseTheBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("kgo-test"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "kgo", Key: []byte("k"), Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "kgo", Key: []byte("k"), Value: []byte("aborted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("kgo"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 1 && ctx.Err() == nil {
		fetches := cons.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// one more short poll: an aborted record must never show up
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	cons.PollFetches(short).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	cancelShort()
	if len(got) != 1 || got[0] != "committed" {
		t.Errorf("read_committed consumer got %q, want only the committed record", got)
	}
}
