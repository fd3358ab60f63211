package processor

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

var (
	counterFn  = functions.TypeName("test/counter")
	wordType   = functions.NewType("test/word", codec.Text())
	countState = functions.NewState("count", functions.LongType)
	countsOut  = functions.TypeName("test/counts")
)

// counterApp counts words per key and writes "<key>=<count>" to topic out.
func counterApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: counterFn,
		Function: functions.Router(functions.Handle(wordType, func(ctx functions.Context, w string) error {
			n, _ := countState.Get(ctx)
			n++
			countState.Set(ctx, n)
			ctx.SendEgress(countsOut, functions.KafkaMessage("", ctx.Self().ID, []byte(ctx.Self().ID+"="+strconv.FormatInt(n, 10))))
			return nil
		})),
		State:    []functions.StateSpec{countState},
		Egresses: []functions.TypeName{countsOut},
	})
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{counterFn},
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(app + "-words"), ValueType: wordType.Name(), Targets: []functions.TypeName{counterFn}}},
		Egresses:   []topology.Egress{{ID: countsOut, Topics: []topology.Topic{topology.Topic(app + "-out")}}},
	}
	return topo, reg
}

func TestIngressToEgressCountsEveryRecordOnce(t *testing.T) {
	brokers, app := testBroker(t, "basic")
	topo, reg := counterApp(app)
	p, err := New(brokers, topo, reg, WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	client := testClient(t, brokers)
	waitFor(t, 10*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	var recs [][2][]byte
	for i := 0; i < 100; i++ {
		recs = append(recs, [2][]byte{key(i % 10), []byte("w")})
	}
	produce(t, client, app+"-words", recs...)
	waitFor(t, 10*time.Second, "100 egress records", func() (bool, string) {
		n := len(readTopic(t, client, app+"-out"))
		return n >= 100, fmt.Sprintf("%d records, stats %+v", n, p.Stats())
	})
	got := readTopic(t, client, app+"-out")
	if len(got) != 100 {
		t.Fatalf("got %d egress records, want 100", len(got))
	}
	last := map[string]int{}
	for _, r := range got {
		var k string
		var n int
		fmt.Sscanf(string(r.Value), "%s", &k)
		parts := []byte(r.Value)
		for i := range parts {
			if parts[i] == '=' {
				n, _ = strconv.Atoi(string(parts[i+1:]))
				k = string(parts[:i])
			}
		}
		if n != last[k]+1 {
			t.Errorf("key %s: got count %d after %d, want consecutive counts", k, n, last[k])
		}
		last[k] = n
	}
	for i := 0; i < 10; i++ {
		if last[string(key(i))] != 10 {
			t.Errorf("key %s: final count %d, want 10", key(i), last[string(key(i))])
		}
	}
}
