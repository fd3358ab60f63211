package module_test

import (
	"fmt"

	"github.com/stateloop/stateloop/topology/module"
)

func Example() {
	const yaml = `
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://functions:8000/statefun/{function.name}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  address: kafka:9092
  topics:
    - topic: names
      valueType: io.statefun.types/string
      targets: [example/person, local/audit]
`
	m, err := module.Parse("module.yaml", []byte(yaml))
	if err != nil {
		fmt.Println(err)
		return
	}
	if e, ok := m.EndpointFor("example/person"); ok {
		fmt.Println("example/person:", e.URLFor("example/person"), e.Transport.Type, e.Transport.CallTimeout)
	}
	fmt.Println("served by the application itself:", m.UnboundTargets())
	topo := m.Topology("greeter")
	fmt.Println("ingress topics:", topo.Ingresses[0].Topic, topo.Ingresses[0].Targets)
	// Output:
	// example/person: http://functions:8000/statefun/person io.statefun.transports.v1/async 2m0s
	// served by the application itself: [local/audit]
	// ingress topics: names [example/person local/audit]
}

func ExampleParse_problems() {
	_, err := module.Parse("module.yaml", []byte(`kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplat: http://functions:8000/statefun
`))
	fmt.Println(err)
	// Output:
	// module: module.yaml:4:3 (document 1, io.statefun.endpoints.v2/http): spec.urlPathTemplat: unknown key; did you mean "urlPathTemplate"?
}
