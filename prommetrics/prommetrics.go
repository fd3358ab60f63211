// Package prommetrics exports the measurements of a stateloop processor as
// Prometheus metrics: give [New]'s result to processor.WithMetrics.
//
// # Metrics
//
// Every metric has the constant label app. The names, labels and meaning
// are listed in docs/operations.md: invocations, failures and durations
// per function type, what invocations sent, dead letters, remote requests
// in flight, backlogs and blocked addresses per function type, committed
// and aborted transactions and commit latency, consumer lag per
// partition, recovery progress, delayed messages sent, expired state.
//
// # Concurrency
//
// The value New returns is safe for concurrent use.
package prommetrics

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateloop/stateloop/functions"
)

// Metrics implements processor.Metrics with Prometheus collectors.
type Metrics struct {
	invocations *prometheus.CounterVec   // function_type, kind: local|remote
	failures    *prometheus.CounterVec   // function_type
	duration    *prometheus.HistogramVec // function_type, kind
	outgoing    *prometheus.CounterVec   // function_type, kind: message|egress|delayed
	deadLetters *prometheus.CounterVec   // function_type ("" for records that reached none)

	remoteInFlight *prometheus.GaugeVec // function_type
	remoteBacklog  *prometheus.GaugeVec // function_type
	remoteBlocked  *prometheus.GaugeVec // function_type

	commits        prometheus.Counter
	aborts         prometheus.Counter
	commitDuration prometheus.Histogram
	lag            *prometheus.GaugeVec // topic, partition

	recoveredPartitions prometheus.Gauge
	recoveredRecords    prometheus.Counter
	timersFired         prometheus.Counter
	expired             prometheus.Counter
}

// New makes the metrics of application app and registers them with reg.
// Each processor of a program needs a registry of its own: New returns an
// error when one of its metrics is registered already.
func New(app string, reg prometheus.Registerer) (*Metrics, error) {
	c := prometheus.Labels{"app": app}
	fn := []string{"function_type"}
	m := &Metrics{
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
	for _, c := range []prometheus.Collector{m.invocations, m.failures, m.duration, m.outgoing, m.deadLetters, m.remoteInFlight,
		m.remoteBacklog, m.remoteBlocked, m.commits, m.aborts, m.commitDuration, m.lag, m.recoveredPartitions, m.recoveredRecords,
		m.timersFired, m.expired} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prommetrics: register metrics: %w (use a registry per processor)", err)
		}
	}
	return m, nil
}

// Invocation records an invocation attempt (kind "local") or a remote
// request (kind "remote") carrying messages messages.
func (m *Metrics) Invocation(fn functions.TypeName, kind string, messages int, took time.Duration, err error) {
	t := string(fn)
	m.duration.WithLabelValues(t, kind).Observe(took.Seconds())
	if err != nil {
		m.failures.WithLabelValues(t).Inc()
		return
	}
	m.invocations.WithLabelValues(t, kind).Add(float64(messages))
}

// Outgoing records what a successful invocation sent.
func (m *Metrics) Outgoing(fn functions.TypeName, messages, egress, delayed int) {
	t := string(fn)
	m.outgoing.WithLabelValues(t, "message").Add(float64(messages))
	m.outgoing.WithLabelValues(t, "egress").Add(float64(egress))
	m.outgoing.WithLabelValues(t, "delayed").Add(float64(delayed))
}

// DeadLetter records a dead letter for fn ("" for none).
func (m *Metrics) DeadLetter(fn functions.TypeName) { m.deadLetters.WithLabelValues(string(fn)).Inc() }

// Remote sets the remote gauges of a function type.
func (m *Metrics) Remote(fn functions.TypeName, inFlight, queued, blocked int) {
	t := string(fn)
	m.remoteInFlight.WithLabelValues(t).Set(float64(inFlight))
	m.remoteBacklog.WithLabelValues(t).Set(float64(queued))
	m.remoteBlocked.WithLabelValues(t).Set(float64(blocked))
}

// Commit records a committed transaction.
func (m *Metrics) Commit(took time.Duration) {
	m.commits.Inc()
	m.commitDuration.Observe(took.Seconds())
}

// Abort records an aborted transaction.
func (m *Metrics) Abort() { m.aborts.Inc() }

// Lag sets the consumer lag of a partition.
func (m *Metrics) Lag(topic string, partition int32, records int64) {
	m.lag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(records))
}

// LagGone removes the lag of a partition the instance no longer consumes.
func (m *Metrics) LagGone(topic string, partition int32) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}

// Recovered sets the number of loop partitions whose state is recovered.
func (m *Metrics) Recovered(partitions int) { m.recoveredPartitions.Set(float64(partitions)) }

// RecoveryRecords adds changelog records recovery read.
func (m *Metrics) RecoveryRecords(n int64) { m.recoveredRecords.Add(float64(n)) }

// TimersFired adds delayed messages sent.
func (m *Metrics) TimersFired(n int) { m.timersFired.Add(float64(n)) }

// Expired adds expired state values removed.
func (m *Metrics) Expired(n int) { m.expired.Add(float64(n)) }
