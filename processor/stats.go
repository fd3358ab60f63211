package processor

// Stats is a snapshot of a processor's counters since it started.
type Stats struct {
	Invocations int64   // successful invocations
	Failures    int64   // failed invocation attempts
	Ingress     int64   // ingress records routed
	Direct      int64   // ingress messages delivered without a hop through the loop topic
	Local       int64   // messages between functions delivered in their sender's transaction
	Egress      int64   // egress records written
	TimersFired int64   // delayed messages sent when due
	Expired     int64   // expired state values removed by the sweep
	Duplicates  int64   // messages not delivered again: their idempotency key was seen
	DeadLetters int64   // records sent to the dead-letter topic
	Controls    int64   // operators' control records applied: state edits, timer cancels, replays (control.go)
	Commits     int64   // committed transactions
	Aborts      int64   // aborted transactions
	Resumed     int64   // input partitions resumed at the application's recorded position, ahead of the group's offset
	Partitions  []int32 // loop partitions owned now, by every thread
	Standbys    []int32 // loop partitions of other instances whose standby stores this one keeps warm (WithStandbys)

	RecoveryRecords int64 // changelog records read to recover partitions on assignment
	StandbyRecords  int64 // changelog records read by the standbys
	Ready           bool  // every thread's session has recovered the state of its partitions
}
