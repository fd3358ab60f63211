package processor

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
)

// metrics are the processor's Prometheus metrics, in StateFun's
// vocabulary where it has one (invocations, backlog, in-flight remote
// requests, blocked addresses) and Kafka's for the rest. Every metric has
// the constant label app.
type metrics struct {
	invocations *prometheus.CounterVec   // function_type, kind: local|remote
	failures    *prometheus.CounterVec   // function_type
	duration    *prometheus.HistogramVec // function_type, kind
	outgoing    *prometheus.CounterVec   // function_type, kind: message|egress|delayed
	deadLetters *prometheus.CounterVec   // function_type ("" for records that reached none)

	// remote functions, from the batcher's counts (setRemote)
	remoteInFlight *prometheus.GaugeVec // function_type
	remoteBacklog  *prometheus.GaugeVec // function_type
	remoteBlocked  *prometheus.GaugeVec // function_type

	commits        prometheus.Counter
	aborts         prometheus.Counter
	commitDuration prometheus.Histogram
	lag            *prometheus.GaugeVec // topic, partition; see lag.go

	recoveredPartitions prometheus.Gauge
	recoveredRecords    prometheus.Counter
	timersFired         prometheus.Counter
	expired             prometheus.Counter
}

func newMetrics(app string, reg prometheus.Registerer) (*metrics, error) {
	c := prometheus.Labels{"app": app}
	fn := []string{"function_type"}
	m := &metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateloop_function_invocations_total", ConstLabels: c,
			Help: "Messages a function type was invoked with and that succeeded, by kind: local (Go) or remote (HTTP)."}, []string{"function_type", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateloop_function_failures_total", ConstLabels: c,
			Help: "Failed invocation attempts (retried ones too) by function type."}, fn),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stateloop_function_invocation_duration_seconds", ConstLabels: c,
			Help:    "Duration of a local invocation, or of a remote request (a batch of messages, retries included).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"function_type", "kind"}),
		outgoing: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateloop_function_outgoing_total", ConstLabels: c,
			Help: "What invocations of a function type sent: messages to addresses, egress records, delayed messages and cancellations."}, []string{"function_type", "kind"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateloop_dead_letters_total", ConstLabels: c,
			Help: "Records written to the dead-letter topic, by the function type they were for (empty when none)."}, fn),
		remoteInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stateloop_remote_inflight_requests", ConstLabels: c,
			Help: "Remote function requests sent and not yet applied, by function type (at most one per address)."}, fn),
		remoteBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stateloop_remote_backlog", ConstLabels: c,
			Help: "Messages waiting behind an in-flight request to their address, by function type."}, fn),
		remoteBlocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stateloop_remote_blocked_addresses", ConstLabels: c,
			Help: "Addresses whose backlog reached maxNumBatchRequests, by function type; while any is, the instance takes no new input."}, fn),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "stateloop_transactions_committed_total", ConstLabels: c,
			Help: "Kafka transactions committed."}),
		aborts: prometheus.NewCounter(prometheus.CounterOpts{Name: "stateloop_transactions_aborted_total", ConstLabels: c,
			Help: "Kafka transactions aborted (their input is processed again)."}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stateloop_transaction_commit_duration_seconds", ConstLabels: c,
			Help: "Time to commit a transaction: writing state, the offsets and the commit.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stateloop_consumer_lag_records", ConstLabels: c,
			Help: "Records of a partition this instance consumes that are not committed yet: the high water mark minus the group's committed offset, " +
				"as kafka-consumer-groups shows it (transaction markers count)."}, []string{"topic", "partition"}),
		recoveredPartitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stateloop_recovered_partitions", ConstLabels: c,
			Help: "Loop partitions this instance owns whose state is recovered; the instance is ready when all are."}),
		recoveredRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "stateloop_recovery_records_total", ConstLabels: c,
			Help: "Changelog records (state and timers) read into the local store during recovery."}),
		timersFired: prometheus.NewCounter(prometheus.CounterOpts{Name: "stateloop_delayed_messages_sent_total", ConstLabels: c,
			Help: "Delayed messages sent when due."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "stateloop_state_expired_total", ConstLabels: c,
			Help: "Expired state values removed by the sweep."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.invocations, m.failures, m.duration, m.outgoing, m.deadLetters, m.remoteInFlight,
			m.remoteBacklog, m.remoteBlocked, m.commits, m.aborts, m.commitDuration, m.lag, m.recoveredPartitions, m.recoveredRecords,
			m.timersFired, m.expired} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("processor: register metrics: %w (use a registry per processor)", err)
			}
		}
	}
	return m, nil
}

// setRemote sets the remote gauges of a function type to the batcher's
// counts; the batcher calls it whenever they change.
func (m *metrics) setRemote(fn functions.TypeName, c remote.TypeCounts) {
	t := string(fn)
	m.remoteInFlight.WithLabelValues(t).Set(float64(c.InFlight))
	m.remoteBacklog.WithLabelValues(t).Set(float64(c.Queued))
	m.remoteBlocked.WithLabelValues(t).Set(float64(c.Blocked))
}
