"""The greeter of StateFun 2.x, as its users wrote it: a remote function
written with the official StateFun Python SDK 2.x (apache-flink-statefun
2.2.2), served with Flask.

example/greeter takes a GreetRequest (messages.proto) packed into a
google.protobuf.Any, counts how often it has seen the name in its state
seen_count (a SeenCount packed into an Any, declared in module.yaml),
and writes a GreetResponse to the Kafka topic greetings through the egress
example/greets, keyed by the name.

Usage: greeter.py [--port 8000]
"""

import argparse
import os
import sys
import threading

from flask import Flask, make_response, request
from google.protobuf.any_pb2 import Any
from statefun import RequestReplyHandler, StatefulFunctions, kafka_egress_record

from messages_pb2 import GreetRequest, GreetResponse, SeenCount

functions = StatefulFunctions()


@functions.bind("example/greeter")
def greet(context, greet_request: GreetRequest):
    state = context['seen_count']
    seen = SeenCount()
    if state is None:
        state = Any()
    else:
        state.Unpack(seen)
    seen.seen += 1
    state.Pack(seen)
    context['seen_count'] = state

    response = compute_greeting(greet_request.name, seen.seen)
    print(response.greeting, flush=True)

    egress_message = kafka_egress_record(topic="greetings", key=greet_request.name, value=response)
    context.pack_and_send_egress("example/greets", egress_message)


def compute_greeting(name, seen):
    """A personalized greeting, by how often name has been seen."""
    templates = ["", "Welcome %s", "Nice to see you again %s", "Third time is a charm %s"]
    if seen < len(templates):
        greeting = templates[seen] % name
    else:
        greeting = "Nice to see you at the %d-nth time %s!" % (seen, name)

    response = GreetResponse()
    response.name = name
    response.greeting = greeting
    return response


handler = RequestReplyHandler(functions)

app = Flask(__name__)


@app.route('/statefun', methods=['POST'])
def handle():
    response_data = handler(request.data)
    response = make_response(response_data)
    response.headers.set('Content-Type', 'application/octet-stream')
    return response


@app.route('/health')
def health():
    return "ok"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stop-on-stdin-eof", action="store_true",
                   help="exit when standard input closes (for the test)")
    args = p.parse_args()
    if args.stop_on_stdin_eof:
        def watch_stdin():
            sys.stdin.buffer.read()
            os._exit(0)
        threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"greeter listening on 127.0.0.1:{args.port}", flush=True)
    app.run(host="127.0.0.1", port=args.port)
