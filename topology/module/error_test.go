package module_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/topology/module"
)

// A module file as someone might write it, with one mistake of each common
// sort; Parse must list them all, in order, in one error.
const faulty = `kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/*
  urlPathTemplate: http://shop-functions:8000/{function.name}
  transport:
    call: 2 minuts
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: shop/orders
  address: kafka:9092
  consumerGroupID: shop
  topics:
    - topic: orders
      targets:
        - shop/cart
---
kind: io.statefun.kafka.v1/egress
spec:
  id: shop/receipts
  address: kafka:9092
  deliverySemantic:
    type: exactly-once
---
kind: io.statefun.kinesis.v1/egress
spec:
  id: shop/archive
`

func TestErrorListsAllProblemsInOrder(t *testing.T) {
	t.Parallel()
	_, err := module.Parse("module.yaml", []byte(faulty))
	if err == nil {
		t.Fatal("got nil error, want the problems of the file")
	}
	want := `module: module.yaml has 5 problems:
module.yaml:6:11 (document 1, io.statefun.endpoints.v2/http): spec.transport.call: duration "2 minuts": unknown unit "minuts"; want a duration like "10s", "10 s", "2m", "1min", "2 minutes", "100ms" or "1 day" (a bare number is milliseconds)
module.yaml:12:3 (document 2, io.statefun.kafka.v1/ingress): spec.consumerGroupID: unknown key; did you mean "consumerGroupId"?
module.yaml:14:7 (document 2, io.statefun.kafka.v1/ingress): spec.topics[0].valueType: missing; a type name like "com.example/Order"
module.yaml:23:5 (document 3, io.statefun.kafka.v1/egress): spec.deliverySemantic.transactionTimeout: missing; exactly-once needs a transaction timeout, a duration like "15min"
module.yaml:25:7 (document 4): kind: io.statefun.kinesis.v1/egress is not supported by stateloop: stateloop reads and writes Kafka only; use io.statefun.kafka.v1/egress`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("Error() mismatch (-want +got):\n%s", diff)
	}

	var perr *module.Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %T, want *module.Error", err)
	}
	wantProblem := module.Problem{
		Position: module.Position{File: "module.yaml", Document: 2, Line: 14, Column: 7},
		Kind:     module.KindKafkaIngress,
		Path:     "spec.topics[0].valueType",
		Message:  `missing; a type name like "com.example/Order"`,
	}
	if diff := cmp.Diff(wantProblem, perr.Problems[2]); diff != "" {
		t.Errorf("Problems[2] mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorWithOneProblemIsOneLine(t *testing.T) {
	t.Parallel()
	_, err := module.Parse("app/module.yaml", []byte("kind: io.statefun.kafka.v1/egress\nspec:\n  id: nope\n"))
	want := `module: app/module.yaml:3:7 (document 1, io.statefun.kafka.v1/egress): spec.id: "nope" is not a type name; want an egress id like "com.example/receipts" (namespace/name, one '/')`
	if err == nil || err.Error() != want {
		t.Errorf("got error %v, want %s", err, want)
	}
}
