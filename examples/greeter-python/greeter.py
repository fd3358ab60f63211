"""The greeter of examples/greeter, written with the official StateFun Python
SDK (apache-flink-statefun 3.3.0) and served with aiohttp: stateloop runs it
as a remote function from module.yaml.

One function, greeter.fns/greet. Its messages are names of the type
greeter.types/name, UTF-8 text: the Kafka ingress of module.yaml hands the
value of each record of the topic "names" over as it is, and the record key
is the function id, so every name is its own address greeter.fns/greet/<name>.
It counts the visits of each name in its int state "visits" and writes one
greeting per visit, keyed by the name, to the Kafka topic "greetings" through
the egress greeter.io/greetings:

    Hello Alice, this is visit 1 (greeted by Python)

The service answers StateFun's request-reply protocol on POST /statefun (the
urlPathTemplate of module.yaml) and "ok" on GET /health, for health checks.
It logs one line per greeting.

Usage: greeter.py [--host 127.0.0.1] [--port 8000] [--stop-on-stdin-eof]

--host 0.0.0.0 serves every interface, as in a container (the Dockerfile does
that). --stop-on-stdin-eof makes the service exit when its standard input
closes, so that it does not outlive a test that starts it.
"""

import argparse
import logging
import os
import sys
import threading

from aiohttp import web
from statefun import (IntType, RequestReplyHandler, StatefulFunctions, ValueSpec, kafka_egress_message,
                      simple_type)

# The message type of the names: UTF-8 text, as `stateloop send --topic names`
# and kcat write it. (io.statefun.types/string would need each record to be
# StateFun's protobuf encoding of a string.)
NAME_TYPE = simple_type(typename="greeter.types/name",
                        serialize_fn=lambda s: s.encode("utf-8"),
                        deserialize_fn=lambda b: b.decode("utf-8"))

# The egress id of module.yaml and the topic of the greetings.
GREETINGS_EGRESS = "greeter.io/greetings"
GREETINGS_TOPIC = "greetings"

log = logging.getLogger("greeter")

functions = StatefulFunctions()


def greeting(name, visits):
    """The greeting of a name on its visits-th visit."""
    return f"Hello {name}, this is visit {visits} (greeted by Python)"


@functions.bind(typename="greeter.fns/greet", specs=[ValueSpec(name="visits", type=IntType)])
async def greet(context, message):
    name = message.as_type(NAME_TYPE)
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    text = greeting(name, visits)
    # The key is the address's id, the record key the ingress routed by.
    context.send_egress(kafka_egress_message(typename=GREETINGS_EGRESS, topic=GREETINGS_TOPIC,
                                             key=context.address.id, value=text))
    log.info("%s: %s", context.address.id, text)


handler = RequestReplyHandler(functions)


async def statefun(request):
    # A request the SDK cannot handle raises; aiohttp answers it with a
    # plain-text HTTP 500, which the runtime retries.
    body = await handler.handle_async(await request.read())
    return web.Response(body=body, content_type="application/octet-stream")


async def health(_):
    return web.Response(text="ok\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for every interface")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stop-on-stdin-eof", action="store_true",
                   help="exit when standard input closes (for tests)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")

    if args.stop_on_stdin_eof:
        def watch_stdin():
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    app = web.Application()
    app.add_routes([web.post("/statefun", statefun), web.get("/health", health)])
    # run_app stops gracefully on SIGINT and SIGTERM (docker stop).
    web.run_app(app, host=args.host, port=args.port, access_log=None,
                print=lambda _: log.info("listening on %s:%d", args.host, args.port))


if __name__ == "__main__":
    main()
