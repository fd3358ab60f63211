"""StateFun functions written with the official Python SDK 2.x
(apache-flink-statefun 2.2.2, see requirements-2.2.txt), in the style of
its documentation, for stateloop's StateFun 2.x interoperability tests
(internal/interop/statefun2_test.go).

The functions, in namespace NS (default "python2"), take and send protobuf
messages packed into google.protobuf.Any (interop.proto):

    ingress (GreetRequest) -> NS/greeter -> NS/responder [-> --upper (3.x) -> NS/responder]
        -> Kafka egress (kafka_egress_record with a GreetResponse)

NS/greeter counts the greetings of each name in the state seen_count (a
SeenCount packed into an Any: context['seen_count'] get and set, del for
a GreetRequest with reset) and sends a GreetResponse "Hello <name> #<seen>"
to NS/responder with pack_and_send. NS/responder checks that its caller is
the greeter, answers it with pack_and_reply(Ack), which the greeter counts
in the state acks and writes as "ack #<acks>" to the egress below; and it writes the greeting to the Kafka topic --topic
through the egress --egress with pack_and_send_egress(kafka_egress_record),
keyed by the name. With --upper TYPE, NS/responder first sends the greeting
to that function (a StateFun 3.x function, server.py's NS/upper), and
writes what it answers.

NS/counter counts its calls in seen_count (a SeenCount in an Any) and
writes "<id> seen <n> by 2.x" to --topic: server.py's NS/counter takes
its state over (statefun2_test.go).

NS/later and NS/arrive are for delayed messages (delayed_test.go, without
cancellation, which StateFun 2.x does not have): NS/later takes the JSON
request interop/Later ({"delay_ms": 500, "text": "m1"}) as the value of its
Any and sends "m1 sent <now> delay 500" to NS/arrive (same id) with
send_after; NS/arrive writes "<text> arrived <now> from <caller type>/<id>"
to --topic through --egress, keyed by its id.

--handler flask serves the functions with the SDK's RequestReplyHandler in
Flask, as StateFun 2.x's documentation shows; --handler aiohttp with its
AsyncRequestReplyHandler (async functions) in aiohttp. Both serve POST
/statefun, and GET /_stats with the requests per function. The service
stops when its standard input closes.

--delay-ms N makes each request take N ms more (so that a test can kill
the runtime while requests are in flight).

Usage: server_2x.py --port 8000 --topic greetings [--egress interop/greetings]
                    [--namespace python2] [--handler flask|aiohttp] [--upper python/upper]
                    [--delay-ms 0]
"""

import argparse
import asyncio
import inspect
import json
import os
import sys
import threading
import time
import typing
from collections import Counter
from datetime import timedelta

from google.protobuf.any_pb2 import Any
from statefun import (AsyncRequestReplyHandler, RequestReplyHandler, StatefulFunctions,
                      kafka_egress_record)
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.request_reply_pb2 import ToFunction

from interop_pb2 import Ack, GreetRequest, GreetResponse, SeenCount


def now_ms():
    """The wall clock in whole Unix milliseconds, as the runtime reads it."""
    return time.time_ns() // 1_000_000


def build(ns, egress, topic, upper, asynchronous):
    functions = StatefulFunctions()

    def greeter(context, message: typing.Union[GreetRequest, Ack]):
        if isinstance(message, Ack):
            acks = increment(context, 'acks')
            ack = GreetResponse()
            ack.name = message.name
            ack.greeting = "ack #%d" % acks
            context.pack_and_send_egress(egress, kafka_egress_record(topic=topic, key=message.name, value=ack))
            return
        if message.reset:
            del context['seen_count']
            return
        state = context['seen_count']
        seen = SeenCount()
        if state is None:
            state = Any()
        else:
            state.Unpack(seen)
        seen.seen += 1
        state.Pack(seen)
        context['seen_count'] = state

        response = GreetResponse()
        response.name = message.name
        response.greeting = "Hello %s #%d" % (message.name, seen.seen)
        context.pack_and_send(f"{ns}/responder", message.name, response)

    def responder(context, response: GreetResponse):
        caller = context.caller.typename()
        if caller == f"{ns}/greeter":
            ack = Ack()
            ack.name = response.name
            context.pack_and_reply(ack)
            if upper:
                context.pack_and_send(upper, context.address.identity, response)
                return
        elif caller != upper:
            raise ValueError(f"{ns}/responder: caller is {context.caller}, want {ns}/greeter or {upper}")
        record = kafka_egress_record(topic=topic, key=response.name, value=response)
        context.pack_and_send_egress(egress, record)

    def counter(context, request: GreetRequest):
        seen = increment(context, 'seen_count')
        record = KafkaProducerRecord()
        record.topic = topic
        record.key = context.address.identity
        record.value_bytes = ("%s seen %d by 2.x" % (context.address.identity, seen)).encode()
        context.pack_and_send_egress(egress, record)

    def later(context, message):
        req = json.loads(message.value)
        text = "%s sent %d delay %d" % (req["text"], now_ms(), req["delay_ms"])
        arrival = Any()
        arrival.type_url = "interop/Arrival"
        arrival.value = text.encode()
        context.send_after(timedelta(milliseconds=req["delay_ms"]), f"{ns}/arrive", context.address.identity, arrival)

    def arrive(context, message):
        arrived = now_ms()
        caller = context.caller
        text = "%s arrived %d from %s/%s" % (message.value.decode(), arrived, caller.typename(), caller.identity)
        record = KafkaProducerRecord()
        record.topic = topic
        record.key = context.address.identity
        record.value_bytes = text.encode()
        context.pack_and_send_egress(egress, record)

    for name, fn in [("greeter", greeter), ("responder", responder), ("counter", counter), ("later", later), ("arrive", arrive)]:
        if asynchronous:
            fn = make_async(fn)
        functions.bind(f"{ns}/{name}")(fn)
    return functions


def increment(context, name):
    """Adds one to the SeenCount in the Any of state name and returns it
    (the greeter above does the same inline, as the SDK's docs show)."""
    state = context[name]
    count = SeenCount()
    if state is None:
        state = Any()
    else:
        state.Unpack(count)
    count.seen += 1
    state.Pack(count)
    context[name] = state
    return count.seen


def make_async(fn):
    """Returns an async function that awaits, then runs fn; it has fn's type
    hint of the message (the SDK unpacks the Any by it)."""

    async def run(context, message):
        await asyncio.sleep(0)
        fn(context, message)

    hint = fn.__annotations__.get(list(inspect.signature(fn).parameters)[1])
    if hint is not None:
        run.__annotations__ = {"message": hint}
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True, help="Kafka topic of the egress records")
    p.add_argument("--egress", default="interop/greetings", help="egress id, as in module.yaml")
    p.add_argument("--namespace", default="python2")
    p.add_argument("--handler", choices=["flask", "aiohttp"], default="flask")
    p.add_argument("--upper", default="", help="a StateFun 3.x function that NS/responder asks first")
    p.add_argument("--delay-ms", type=int, default=0, help="take this long for each request, before the SDK handler")
    args = p.parse_args()

    functions = build(args.namespace, args.egress, args.topic, args.upper, args.handler == "aiohttp")
    requests = Counter()
    lock = threading.Lock()

    def count(body):
        to = ToFunction()
        to.ParseFromString(body)
        with lock:
            requests[to.invocation.target.type] += 1
        time.sleep(args.delay_ms / 1000)

    # Exit when the parent closes our standard input (or dies).
    def watch_stdin():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"listening on 127.0.0.1:{args.port} ({args.handler})", flush=True)

    if args.handler == "flask":
        import logging

        from flask import Flask, jsonify, make_response, request

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

        handler = RequestReplyHandler(functions)
        app = Flask(__name__)

        @app.route('/statefun', methods=['POST'])
        def handle():
            count(request.data)
            response_data = handler(request.data)
            response = make_response(response_data)
            response.headers.set('Content-Type', 'application/octet-stream')
            return response

        @app.route('/_stats')
        def stats():
            with lock:
                return jsonify({"requests": dict(requests), "failures": {}})

        app.run(host="127.0.0.1", port=args.port, threaded=True)
        return

    from aiohttp import web

    handler = AsyncRequestReplyHandler(functions)

    async def handle(request):
        req = await request.read()
        count(req)
        res = await handler(req)
        return web.Response(body=res, content_type="application/octet-stream")

    async def stats(_):
        with lock:
            return web.json_response({"requests": dict(requests), "failures": {}})

    app = web.Application()
    app.add_routes([web.post('/statefun', handle), web.get('/_stats', stats)])
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
