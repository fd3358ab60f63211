// Package fraud is the fraud detector that Apache Flink Stateful Functions
// (StateFun) uses to motivate its model, written with stateloop's Go API:
// every card transaction is scored by a model from features that other
// functions own, and the risky ones raise alerts.
//
// # Concepts
//
// Transactions arrive as JSON on the Kafka topic "transactions" and are
// routed by their id to [TransactionFunction]; confirmed fraud reports
// arrive on "confirmed-fraud", keyed by account, and go to
// [CounterFunction] at that account. Four function types work together:
//
//   - fraud/counter, one per account: the number of confirmed fraud
//     reports of the last [Config.Window] (30 days). Each report adds one
//     and sends a delayed message to itself that takes it back once the
//     window has passed.
//   - fraud/merchant, one per merchant: the merchant's risk score from a
//     third-party service (a stand-in: [MerchantRisk]), kept in state that
//     expires [Config.MerchantTTL] after it was written, so it is looked up
//     again now and then.
//   - fraud/transaction, one per transaction: asks the counter of its
//     account and the merchant of its merchant for their part of the
//     feature vector, keeps the partial vector in state until both have
//     answered, then asks the model for a score, sends the decision to the
//     egress fraud/scores (topic "scores") and, when the score is over
//     [Config.Threshold], to fraud/alerts (topic "alerts").
//   - fraud/model: a stand-in model ([Score]) that answers each feature
//     vector with a score.
//
// The request/response between functions uses the caller: the counter,
// the merchant and the model answer to ctx.Caller(), which is the
// transaction that asked.
//
// [Config.Build] returns the application, named "fraud", for app.Main;
// [Build] is the same with the defaults, for `stateloop run fraud`.
package fraud
