// StateFun functions written with the official JavaScript SDK
// (apache-flink-statefun 3.3.0 from npm), served with Node's http module, for
// stateloop's interoperability tests (internal/interop/interop_test.go).
//
// The functions, in namespace NS (default "js"), form a cycle through the Go
// function local/shout that the test's application registers:
//
//   ingress (string name) -> NS/greeter -> NS/relay -> local/shout (Go)
//       -> NS/echo -> Kafka egress (kafkaEgressMessage)
//
// NS/greeter counts the greetings of each name in the int state "seen" and
// sends "Hello <name> #<seen>" (with its caller appended, should a message
// from the ingress have one); NS/relay checks that its caller is the
// greeter and forwards the text to local/shout; local/shout sends it in
// capitals back to NS/echo, which counts in the JSON state "echoed"
// ({"count": n}, type interop/EchoCount) and writes
// "<TEXT> (echo <n> from <caller>)" to the Kafka topic --topic through the
// egress --egress, keyed by the name.
//
// NS/later and NS/arrive are for delayed messages
// (internal/interop/delayed_test.go). NS/later takes the JSON type
// interop/Later: {"delay_ms": 500, "token": "t1", "text": "m1"} sends
// "m1 sent <now> delay 500" to NS/arrive (same id) after the delay, with
// sendAfter and the cancellation token when given (<now> is this service's
// clock in Unix milliseconds); {"cancel": "t1"} cancels it
// (cancelDelayedMessage). NS/arrive writes "<text> arrived <now> from
// <caller type>/<caller id>" to the Kafka topic --topic through the egress
// --egress, keyed by its id: the test compares the arrival with the send
// time plus the delay.
//
// Besides the functions, the service answers GET /_stats with the number of
// requests and injected failures per function, and with --fail-first N it
// answers HTTP 500 to the first N requests of each function, after running
// the SDK handler on them (so the function runs and its effects are thrown
// away, as when a response is lost). It stops when its standard input
// closes, so it does not outlive the test that started it.
//
// Usage: node server.js --port 8000 --topic greetings [--egress interop/greetings]
//                       [--namespace js] [--fail-first 0]
"use strict";

const http = require("http");
const { parseArgs } = require("util");
const { StateFun, messageBuilder, kafkaEgressMessage } = require("apache-flink-statefun");

const LATER_TYPE = StateFun.jsonType("interop/Later");
const ECHO_COUNT_TYPE = StateFun.jsonType("interop/EchoCount");

function build(ns, egress, topic) {
  const statefun = new StateFun();

  statefun.bind({
    typename: `${ns}/greeter`,
    specs: [{ name: "seen", type: StateFun.intType() }],
    fn(context, message) {
      const name = message.asString();
      const seen = (context.storage.seen || 0) + 1;
      context.storage.seen = seen;
      let text = `Hello ${name} #${seen}`;
      if (context.caller !== null) { // messages from an ingress have none
        text += ` (caller ${context.caller.typename}/${context.caller.id})`;
      }
      context.send(messageBuilder({ typename: `${ns}/relay`, id: context.self.id, value: text }));
    },
  });

  statefun.bind({
    typename: `${ns}/relay`,
    fn(context, message) {
      const caller = context.caller;
      if (caller === null || caller.typename !== `${ns}/greeter`) {
        throw new Error(`${ns}/relay: caller is ${caller && caller.typename}, want ${ns}/greeter`);
      }
      context.send(messageBuilder({ typename: "local/shout", id: context.self.id, value: message.asString() }));
    },
  });

  statefun.bind({
    typename: `${ns}/echo`,
    specs: [{ name: "echoed", type: ECHO_COUNT_TYPE }],
    fn(context, message) {
      const echoed = { count: ((context.storage.echoed || {}).count || 0) + 1 };
      context.storage.echoed = echoed;
      const caller = context.caller === null ? "an ingress" : context.caller.typename;
      context.send(kafkaEgressMessage({
        typename: egress,
        topic: topic,
        key: context.self.id,
        value: `${message.asString()} (echo ${echoed.count} from ${caller})`,
      }));
    },
  });

  statefun.bind({
    typename: `${ns}/later`,
    fn(context, message) {
      const req = message.as(LATER_TYPE);
      if (req.cancel) {
        context.cancelDelayedMessage(req.cancel);
        return;
      }
      const text = `${req.text || `later ${context.self.id}`} sent ${Date.now()} delay ${req.delay_ms}`;
      const msg = messageBuilder({ typename: `${ns}/arrive`, id: context.self.id, value: text });
      // The token goes on the wire only when given (undefined: none).
      context.sendAfter(req.delay_ms, msg, req.token);
    },
  });

  statefun.bind({
    typename: `${ns}/arrive`,
    fn(context, message) {
      const arrived = Date.now();
      const caller = context.caller === null ? "an-ingress" : `${context.caller.typename}/${context.caller.id}`;
      context.send(kafkaEgressMessage({
        typename: egress,
        topic: topic,
        key: context.self.id,
        value: `${message.asString()} arrived ${arrived} from ${caller}`,
      }));
    },
  });

  return statefun;
}

function main() {
  const { values: args } = parseArgs({
    options: {
      port: { type: "string" },
      topic: { type: "string" },
      egress: { type: "string", default: "interop/greetings" },
      namespace: { type: "string", default: "js" },
      "fail-first": { type: "string", default: "0" },
    },
  });
  if (!args.port || !args.topic) {
    console.error("usage: node server.js --port PORT --topic TOPIC [--egress ns/name] [--namespace js] [--fail-first N]");
    process.exit(2);
  }
  const port = Number(args.port);
  const failFirst = Number(args["fail-first"]);
  const statefun = build(args.namespace, args.egress, args.topic);
  const requests = {};
  const failures = {};

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (req.method === "GET" && url.pathname === "/_stats") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ requests, failures }));
      return;
    }
    const fn = url.pathname.slice(1);
    requests[fn] = (requests[fn] || 0) + 1;
    // StateFun.handle writes the SDK's answer (200 with the FromFunction, or
    // an empty 500 when the function throws) to a response; catch it here to
    // inject failures after the function ran.
    const sdk = {
      writeHead(status, headers) { this.status = status; this.headers = headers; },
      end(body) { this.body = body; },
    };
    await statefun.handle(req, sdk);
    if ((failures[fn] || 0) < failFirst) {
      failures[fn] = (failures[fn] || 0) + 1;
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(`injected failure ${failures[fn]} of ${failFirst} for ${fn}`);
      return;
    }
    res.writeHead(sdk.status, sdk.headers);
    res.end(sdk.body);
  });
  server.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));

  // Exit when the parent closes our standard input (or dies).
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

main();
