package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestNum(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 43210: "43,210", 100000: "100,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(d, 50); got != 50*time.Millisecond {
		t.Errorf("p50 = %v, want 50ms", got)
	}
	if got := percentile(d, 99); got != 99*time.Millisecond {
		t.Errorf("p99 = %v, want 99ms", got)
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v, want 1ms", got)
	}
}

func testReader(counted bool) *reader {
	r := &reader{topic: "out", counted: counted, ids: map[string]*idState{}}
	for i := range r.phases {
		r.phases[i].done = make(chan struct{})
	}
	return r
}

func output(phase byte, seq int, key string, count int64) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{Topic: "out", Key: []byte(key), Value: outputValue(inputValue(phase, uint64(seq), time.Now().UnixNano()), count)}
}

func TestVerifyExact(t *testing.T) {
	r := testReader(true)
	for ph := range numPhases {
		r.expect(ph, 4)
	}
	counts := map[string]int64{}
	for ph := range numPhases {
		for seq := range 4 {
			key := idKey(seq, 3)
			counts[key]++
			r.handle(output(byte(ph), seq, key, counts[key]), time.Now())
		}
	}
	select {
	case <-r.phases[phasePaced].done:
	default:
		t.Error("paced phase not done")
	}
	checks, err := r.verify("runtime", 12)
	if err != nil {
		t.Fatal(err)
	}
	if want := "final counts of 3 ids add up to 12"; !strings.Contains(strings.Join(checks, "\n"), want) {
		t.Errorf("checks %q lack %q", checks, want)
	}
}

func TestVerifyFindsDuplicatesAndLosses(t *testing.T) {
	r := testReader(true)
	r.expect(phaseWarmup, 0)
	r.expect(phaseLoad, 3)
	r.expect(phasePaced, 0)
	r.handle(output(phaseLoad, 0, "a", 1), time.Now())
	r.handle(output(phaseLoad, 0, "a", 2), time.Now()) // a duplicate, counted twice
	r.handle(output(phaseLoad, 1, "b", 1), time.Now()) // seq 2 is lost
	r.handle(output(phaseLoad, 7, "c", 1), time.Now()) // never written
	_, err := r.verify("runtime", 3)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"1 missing", "1 duplicate output records", "1 output records for records that were never written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestVerifyFindsWrongCounts(t *testing.T) {
	r := testReader(true)
	r.expect(phaseWarmup, 0)
	r.expect(phaseLoad, 2)
	r.expect(phasePaced, 0)
	r.handle(output(phaseLoad, 0, "a", 1), time.Now())
	r.handle(output(phaseLoad, 1, "a", 1), time.Now()) // the count did not advance
	_, err := r.verify("runtime", 2)
	if err == nil || !strings.Contains(err.Error(), "not 1, 2, ... n") {
		t.Fatalf("got %v, want an error about the counts", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{Messages: -1, Sides: []string{"runtime", "nope"}, CPUProfile: "x", ProfileSide: "raw"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"messages -1", `side "nope"`, `profile side "raw"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
