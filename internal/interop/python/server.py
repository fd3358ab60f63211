"""StateFun functions written with the official Python SDK (apache-flink-statefun
3.3.0), served with aiohttp, for stateloop's interoperability tests
(internal/interop/interop_test.go).

The functions, in namespace NS (default "python"), form a cycle through the
Go function local/shout that the test's application registers:

    ingress (string name) -> NS/greeter -> NS/relay -> local/shout (Go)
        -> NS/echo -> Kafka egress (kafka_egress_message)

NS/greeter counts the greetings of each name in the int state "seen" and
sends "Hello <name> #<seen>" (with its caller appended, should a message
from the ingress have one); NS/relay checks that its caller is the greeter
and forwards the text to local/shout; local/shout sends it in capitals back
to NS/echo, which counts in the long state "echoed" and writes
"<TEXT> (echo <echoed> from <caller>)" to the Kafka topic --topic through the
egress --egress, keyed by the name.

NS/upper answers a StateFun 2.x function (server_2x.py, through
internal/interop/statefun2_test.go): it takes an interop.GreetResponse
(interop.proto) and sends it back to its caller with the greeting in
capitals.

NS/counter counts in seen_count, a SeenCount (interop.proto) as protobuf
type: it takes over the state of server_2x.py's NS/counter.

NS/later and NS/arrive are for delayed messages
(internal/interop/delayed_test.go). NS/later takes the JSON type
interop/Later: {"delay_ms": 500, "token": "t1", "text": "m1"} sends
"m1 sent <now> delay 500" to NS/arrive (same id) after the delay, with
send_after and the cancellation token when given (<now> is this service's
clock in Unix milliseconds); {"cancel": "t1"} cancels it
(cancel_delayed_message). NS/arrive writes "<text> arrived <now> from
<caller type>/<caller id>" to the Kafka topic --topic through the egress
--egress, keyed by its id: the test compares the arrival with the send
time plus the delay.

Besides the functions, the service answers GET /_stats with the number of
requests and injected failures per function, and with --fail-first N it
answers HTTP 500 to the first N requests of each function, after running the
SDK handler on them (so the function runs and its effects are thrown away,
as when a response is lost). It stops when its standard input closes, so it
does not outlive the test that started it.

Usage: server.py --port 8000 --topic greetings [--egress interop/greetings]
                 [--namespace python] [--fail-first 0]
"""

import argparse
import os
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

from aiohttp import web
from statefun import (IntType, LongType, RequestReplyHandler, StatefulFunctions, ValueSpec,
                      kafka_egress_message, make_json_type, make_protobuf_type, message_builder)

from interop_pb2 import GreetResponse, SeenCount

LATER_TYPE = make_json_type("interop/Later")
# type.googleapis.com/interop.GreetResponse: the type URL that the StateFun
# 2.x SDK's Any.Pack gives the same message.
GREET_RESPONSE_TYPE = make_protobuf_type(GreetResponse)
SEEN_COUNT_TYPE = make_protobuf_type(SeenCount)


def now_ms():
    """The wall clock in whole Unix milliseconds, as the runtime reads it."""
    return time.time_ns() // 1_000_000


def build(ns, egress, topic):
    functions = StatefulFunctions()

    @functions.bind(typename=f"{ns}/greeter", specs=[ValueSpec(name="seen", type=IntType)])
    async def greeter(context, message):
        name = message.as_string()
        seen = (context.storage.seen or 0) + 1
        context.storage.seen = seen
        text = f"Hello {name} #{seen}"
        if context.caller is not None:  # messages from an ingress have none
            text += f" (caller {context.caller.typename}/{context.caller.id})"
        context.send(message_builder(target_typename=f"{ns}/relay", target_id=context.address.id, str_value=text))

    @functions.bind(typename=f"{ns}/relay")
    def relay(context, message):
        caller = context.caller
        if caller is None or caller.typename != f"{ns}/greeter":
            raise ValueError(f"{ns}/relay: caller is {caller}, want {ns}/greeter")
        context.send(message_builder(target_typename="local/shout", target_id=context.address.id,
                                     str_value=message.as_string()))

    @functions.bind(typename=f"{ns}/echo", specs=[ValueSpec(name="echoed", type=LongType)])
    def echo(context, message):
        echoed = (context.storage.echoed or 0) + 1
        context.storage.echoed = echoed
        caller = context.caller.typename if context.caller else "an ingress"
        context.send_egress(kafka_egress_message(typename=egress, topic=topic, key=context.address.id,
                                                 value=f"{message.as_string()} (echo {echoed} from {caller})"))

    @functions.bind(typename=f"{ns}/later")
    def later(context, message):
        req = message.as_type(LATER_TYPE)
        if req.get("cancel"):
            context.cancel_delayed_message(req["cancel"])
            return
        text = req.get("text") or f"later {context.address.id}"
        delay_ms = req["delay_ms"]
        text += f" sent {now_ms()} delay {delay_ms}"
        msg = message_builder(target_typename=f"{ns}/arrive", target_id=context.address.id, str_value=text)
        # The SDK sends int(total_seconds * 1000): 1001 ms goes out as 1000.
        context.send_after(timedelta(milliseconds=delay_ms), msg,
                           cancellation_token=req.get("token", ""))

    @functions.bind(typename=f"{ns}/arrive")
    def arrive(context, message):
        arrived = now_ms()
        caller = f"{context.caller.typename}/{context.caller.id}" if context.caller else "an-ingress"
        context.send_egress(kafka_egress_message(typename=egress, topic=topic, key=context.address.id,
                                                 value=f"{message.as_string()} arrived {arrived} from {caller}"))

    @functions.bind(typename=f"{ns}/upper")
    def upper(context, message):
        # A StateFun 3.x function answering a StateFun 2.x one
        # (server_2x.py's NS/responder): the greeting in capitals, back to
        # the caller, as the same protobuf type.
        response = message.as_type(GREET_RESPONSE_TYPE)
        response.greeting = response.greeting.upper()
        context.send(message_builder(target_typename=context.caller.typename, target_id=context.caller.id,
                                     value=response, value_type=GREET_RESPONSE_TYPE))

    @functions.bind(typename=f"{ns}/counter", specs=[ValueSpec(name="seen_count", type=SEEN_COUNT_TYPE)])
    def counter(context, message):
        # The StateFun 3.x version of server_2x.py's NS/counter: it reads
        # the state that one stored (a SeenCount in an Any, kept as its
        # type URL and value) as the protobuf type of the same name.
        seen = context.storage.seen_count or SeenCount()
        seen.seen += 1
        context.storage.seen_count = seen
        context.send_egress(kafka_egress_message(typename=egress, topic=topic, key=context.address.id,
                                                 value=f"{context.address.id} seen {seen.seen} by 3.x"))

    return functions


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True, help="Kafka topic of the egress records")
    p.add_argument("--egress", default="interop/greetings", help="egress id, as in module.yaml")
    p.add_argument("--namespace", default="python")
    p.add_argument("--fail-first", type=int, default=0,
                   help="answer HTTP 500 to the first N requests of each function")
    args = p.parse_args()

    handler = RequestReplyHandler(build(args.namespace, args.egress, args.topic))
    requests, failures = Counter(), Counter()

    async def statefun(request):
        fn = request.match_info["fn"]
        requests[fn] += 1
        # The SDK raises on a request it cannot handle; aiohttp turns that
        # into a plain-text 500, which the runtime retries.
        body = await handler.handle_async(await request.read())
        if failures[fn] < args.fail_first:
            failures[fn] += 1
            return web.Response(status=500, text=f"injected failure {failures[fn]} of {args.fail_first} for {fn}")
        return web.Response(body=body, content_type="application/octet-stream")

    async def stats(_):
        return web.json_response({"requests": requests, "failures": failures})

    app = web.Application()
    app.add_routes([web.get("/_stats", stats), web.post("/{fn}", statefun)])

    # Exit when the parent closes our standard input (or dies).
    def watch_stdin():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None,
                print=lambda _: print(f"listening on 127.0.0.1:{args.port}", flush=True))


if __name__ == "__main__":
    main()
