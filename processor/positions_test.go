package processor

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Regression: with the consumer group's committed offsets lost (kfake
// persists them after a commit's markers, so a kill in between loses
// them; an emptied offsets file or a deleted group does the same), a
// restarted application processed every input record again from the
// start of its topics, doubling every effect.
func TestLostGroupOffsetsDoNotReplayInput(t *testing.T) {
	brokers, app := testBroker(t, "lostoffsets")
	topo, reg := cycleApp(app)
	client := testClient(t, brokers)
	newProc := func() *Processor {
		p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	perID := map[string]int{}
	const ids = 16
	p := newProc()
	stop := runProcessor(t, p)
	produceSeqs(t, client, app+"-in", 0, 1000, ids, perID)
	waitFor(t, 60*time.Second, "the first 1,000 records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n == 1000, fmt.Sprintf("%d done", n)
	})
	stop()

	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the consumer group deleted", func() (bool, string) {
		err := admin.DeleteConsumerGroup(app)
		return err == nil || errors.Is(err, sarama.ErrGroupIDNotFound), fmt.Sprint(err)
	})

	p = newProc()
	runProcessor(t, p)
	produceSeqs(t, client, app+"-in", 1000, 2000, ids, perID)
	waitFor(t, 60*time.Second, "all 2,000 records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n == 2000, fmt.Sprintf("%d done", n)
	})
	// give a replay of the first records the time to show
	time.Sleep(time.Second)
	checkCycleExact(t, client, topo, perID)
	if s := p.Stats(); s.Resumed == 0 {
		t.Errorf("no input partition resumed at its recorded position: %+v", s)
	}
}
