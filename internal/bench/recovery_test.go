package bench

import (
	"strings"
	"testing"
	"time"
)

// TestRecovery runs a small recovery bench: the cold start must rebuild
// every filled address from the changelog and the restart on its local
// store must read only what was written since, the probes must see the
// recovered counts (Run fails otherwise), every instance run must give
// exactly one output per input with exact counts, and the instance killed
// without standbys must leave partitions without output for more than a
// second (the session timeout is 10s).
func TestRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker, in-process instances and six child instances, about a minute")
	}
	cfg := DefaultConfig()
	cfg.InProcess = true
	cfg.Recovery = true
	cfg.RecoveryAddresses = 5000
	cfg.Messages, cfg.IDs, cfg.Warmup = 2000, 50, 100
	cfg.Rate, cfg.RecoverySteady, cfg.RecoveryAfter = 500, 2*time.Second, time.Second
	var out strings.Builder
	res, err := Run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	r := res.Recovery
	if r.Cold.Records < int64(cfg.RecoveryAddresses) {
		t.Errorf("cold start recovered %d records, want at least the %d filled", r.Cold.Records, cfg.RecoveryAddresses)
	}
	if r.Warm.Records >= int64(cfg.RecoveryAddresses)/10 {
		t.Errorf("restart on the local store read %d changelog records, want only the few written since the cold start", r.Warm.Records)
	}
	if r.RawBefore.Records < cfg.RecoveryAddresses || r.RawAfter.Records < r.RawBefore.Records {
		t.Errorf("raw reads of %d and %d records, want at least %d, the second no fewer", r.RawBefore.Records, r.RawAfter.Records, cfg.RecoveryAddresses)
	}
	if len(r.Instances) != 3 {
		t.Fatalf("%d instance runs, want 3", len(r.Instances))
	}
	for i, in := range r.Instances {
		if in.Instances != i+1 || in.Phase.Records != cfg.Messages || len(in.Checks) != 2 {
			t.Errorf("instance run %d: %+v, want %d instances, %d records and two checks", i, in, i+1, cfg.Messages)
		}
	}
	if r.Kill == nil || r.Bounce == nil {
		t.Fatalf("kill %v, bounce %v: want both", r.Kill, r.Bounce)
	}
	if r.Kill.PausedOver1s == 0 {
		t.Errorf("killed instance: no partition paused over a second, want those of the killed instance (longest gap %v)", r.Kill.Pause)
	}
	if r.Bounce.Restart <= 0 {
		t.Errorf("bounce: restart to ready %v, want the restarted instance's", r.Bounce.Restart)
	}
	for _, want := range []string{
		"cold rebuild into an empty store: records/s",
		"restart on the local store: ready, serving",
		"ratio to 1 instance",
		"one instance of three killed (SIGKILL) and started again at once: ",
		"3 instances: 2,100 output records for 2,100 input records, one for each",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}
