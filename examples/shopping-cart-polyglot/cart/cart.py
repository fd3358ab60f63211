"""The cart of the polyglot shopping cart (examples/shopping-cart-polyglot),
written with the official StateFun Python SDK (apache-flink-statefun 3.3.0)
and served with aiohttp: stateloop calls it as the remote function shop/cart
that module.yaml binds to this service.

shop/cart/<user> is a user's cart, with the semantics and messages of the Go
cart of examples/shopping-cart (shop/cart.go):

- shop/AddToCart {"itemId", "quantity"} asks the item's inventory
  (shop/inventory/<item>, JavaScript) to reserve it with a shop/RequestItem
  and waits for the inventory's shop/ItemAvailability: the item joins the
  basket if it was in stock, and the command's caller (an HTTP request with
  ?wait=, say) gets a shop/CartView;
- shop/Checkout hands the basket to the user's checkout (shop/checkout/<user>,
  Go) as a shop/Order; the checkout writes the receipt to the topic
  "receipts" and answers with a shop/Receipt, which goes to the command's
  caller;
- shop/ClearCart gives the basket's items back to their inventories
  (shop/ReleaseItem);
- a cart left alone for --abandon-after (30 minutes) sends itself a
  shop/ClearCart; every add starts the wait again (a delayed message with
  the cancellation token "abandon"), a clear or a checkout cancels it.

A command with no itemId or a quantity below 1 changes nothing and is
answered with a CartView whose event says why (the Go cart sends it to the
dead-letter topic instead: a remote function has no way to say "do not
retry"). A message of another type fails the call with HTTP 500, which
stateloop retries within the endpoint's call timeout and then writes to the
dead-letter topic.

Every message is JSON, written compactly as Go's encoding/json writes it, so
the answers over HTTP read the same whichever language made them.

The service answers StateFun's request-reply protocol on POST /statefun (the
urlPathTemplate of module.yaml) and "ok" on GET /health.

Usage: cart.py [--host 127.0.0.1] [--port 8000] [--abandon-after 1800]
               [--stop-on-stdin-eof]

--stop-on-stdin-eof makes the service exit when its standard input closes,
so that it does not outlive a test that starts it.
"""

import argparse
import json
import logging
import os
import sys
import threading
from datetime import timedelta

from aiohttp import web
from statefun import RequestReplyHandler, StatefulFunctions, ValueSpec, message_builder, simple_type

log = logging.getLogger("cart")


def json_type(typename):
    """A JSON type written without spaces, as Go writes it (the SDK's
    make_json_type puts a space after every ',' and ':')."""
    return simple_type(typename=typename,
                       serialize_fn=lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
                       deserialize_fn=json.loads)


# The messages, with the type names of examples/shopping-cart/shop/types.go.
ADD_TO_CART = json_type("shop/AddToCart")
CLEAR_CART = json_type("shop/ClearCart")
CHECKOUT = json_type("shop/Checkout")
REQUEST_ITEM = json_type("shop/RequestItem")
RELEASE_ITEM = json_type("shop/ReleaseItem")
ITEM_AVAILABILITY = json_type("shop/ItemAvailability")
ORDER = json_type("shop/Order")
RECEIPT = json_type("shop/Receipt")
CART_VIEW = json_type("shop/CartView")

# The state of a cart: the items reserved for the user (quantity by item
# id), and the commands waiting for another function's answer, oldest first:
# {"itemId", "quantity", "replyTo"} for an item being reserved, {"replyTo"}
# for an order at the checkout; replyTo ({"type", "id"}) is the command's
# caller, left out for a command from Kafka.
BASKET = json_type("shop/Basket")
WAITING = json_type("shop/Waiting")

CART = "shop/cart"
INVENTORY = "shop/inventory"
CHECKOUT_FN = "shop/checkout"
IN_STOCK = "IN_STOCK"
ABANDON_TOKEN = "abandon"

# How long a cart keeps its items after its last add; --abandon-after.
abandon_after = timedelta(minutes=30)

functions = StatefulFunctions()


@functions.bind(typename=CART, specs=[ValueSpec(name="basket", type=BASKET), ValueSpec(name="waiting", type=WAITING)])
async def cart(context, message):
    for tpe, handle in ((ADD_TO_CART, add_to_cart), (ITEM_AVAILABILITY, item_availability),
                        (CLEAR_CART, clear_cart), (CHECKOUT, checkout), (RECEIPT, receipt)):
        if message.is_type(tpe):
            handle(context, message.as_type(tpe))
            return
    raise TypeError(f"{CART}/{context.address.id}: unhandled message type {message.value_typename()}")


def add_to_cart(context, add):
    """Asks the item's inventory to reserve the quantity; the cart answers
    its caller when the inventory has answered."""
    item, quantity = add.get("itemId"), add.get("quantity")
    if not isinstance(item, str) or not item or type(quantity) is not int or quantity < 1:
        event = f"rejected: want an itemId and a quantity of at least 1, got {item!r} and {quantity!r}"
        log.warning("%s: %s", context.address.id, event)
        reply(context, CART_VIEW, view(context, context.storage.basket, event))
        return
    context.send(message_builder(target_typename=INVENTORY, target_id=item,
                                 value={"quantity": quantity}, value_type=REQUEST_ITEM))
    waiting = context.storage.waiting or []
    waiting.append(with_caller(context, {"itemId": item, "quantity": quantity}))
    context.storage.waiting = waiting
    context.send_after(abandon_after,
                       message_builder(target_typename=CART, target_id=context.address.id, value={}, value_type=CLEAR_CART),
                       cancellation_token=ABANDON_TOKEN)


def item_availability(context, a):
    """An inventory's answer to an item being reserved: the item joins the
    basket if it was in stock, and the command's caller gets the cart."""
    waiting = context.storage.waiting or []
    i = next((i for i, p in enumerate(waiting) if p.get("itemId") == a["itemId"]), None)
    if i is None:
        # nobody asked for it (a cart never does this): give it back
        if a["status"] == IN_STOCK:
            context.send(message_builder(target_typename=INVENTORY, target_id=a["itemId"],
                                         value={"quantity": a["quantity"]}, value_type=RELEASE_ITEM))
        return
    pending = waiting.pop(i)
    set_waiting(context, waiting)
    basket = context.storage.basket or {}
    if a["status"] == IN_STOCK:
        basket[a["itemId"]] = basket.get(a["itemId"], 0) + a["quantity"]
        context.storage.basket = basket
        event = f"added {a['quantity']} {a['itemId']}"
    else:
        event = f"{a['itemId']}: {a['quantity']} asked, {a['left']} in stock"
    send_to(context, pending.get("replyTo"), CART_VIEW, view(context, basket, event))


def clear_cart(context, _):
    """Gives the basket's items back to their inventories. The cart sends it
    to itself when it has been left alone for abandon_after."""
    basket = context.storage.basket or {}
    for item in sorted(basket):
        context.send(message_builder(target_typename=INVENTORY, target_id=item,
                                     value={"quantity": basket[item]}, value_type=RELEASE_ITEM))
    del context.storage.basket
    caller = context.caller
    if caller is not None and caller.typename == CART and caller.id == context.address.id:
        log.info("%s: abandoned, released %s", context.address.id, lines(basket))
        return  # nobody to answer
    context.cancel_delayed_message(ABANDON_TOKEN)
    reply(context, CART_VIEW, view(context, {}, "cleared"))


def checkout(context, _):
    """Hands the basket to the user's checkout; the command's caller gets the
    receipt when the checkout sends it back."""
    basket = context.storage.basket or {}
    if not basket:
        reply(context, CART_VIEW, view(context, {}, "the cart is empty: nothing to check out"))
        return
    user = context.address.id
    context.send(message_builder(target_typename=CHECKOUT_FN, target_id=user,
                                 value={"userId": user, "items": lines(basket)}, value_type=ORDER))
    waiting = context.storage.waiting or []
    waiting.append(with_caller(context, {}))
    context.storage.waiting = waiting
    del context.storage.basket
    context.cancel_delayed_message(ABANDON_TOKEN)


def receipt(context, r):
    """The checkout's answer to an order: it goes to the caller of the
    checkout command."""
    waiting = context.storage.waiting or []
    i = next((i for i, p in enumerate(waiting) if not p.get("itemId")), None)
    if i is None:
        return
    pending = waiting.pop(i)
    set_waiting(context, waiting)
    log.info("%s: order %s placed", context.address.id, r.get("orderId"))
    send_to(context, pending.get("replyTo"), RECEIPT, r)


def with_caller(context, pending):
    """pending with the message's caller as replyTo, if it has one."""
    caller = context.caller
    if caller is not None:
        pending["replyTo"] = {"type": caller.typename, "id": caller.id}
    return pending


def reply(context, tpe, value):
    """Answers the message's caller; a message from Kafka has none."""
    caller = context.caller
    if caller is not None:
        context.send(message_builder(target_typename=caller.typename, target_id=caller.id, value=value, value_type=tpe))


def send_to(context, address, tpe, value):
    """Sends value to a replyTo address kept in state; None for nobody."""
    if address:
        context.send(message_builder(target_typename=address["type"], target_id=address["id"], value=value, value_type=tpe))


def set_waiting(context, waiting):
    """Stores the waiting commands; none leaves no state behind."""
    if waiting:
        context.storage.waiting = waiting
    else:
        del context.storage.waiting


def lines(basket):
    """The items of a basket, sorted by item id."""
    return [{"itemId": item, "quantity": basket[item]} for item in sorted(basket or {})]


def view(context, basket, event):
    return {"userId": context.address.id, "items": lines(basket), "event": event}


handler = RequestReplyHandler(functions)


async def statefun(request):
    # A request the SDK cannot handle raises; aiohttp answers it with a
    # plain-text HTTP 500, which the runtime retries.
    body = await handler.handle_async(await request.read())
    return web.Response(body=body, content_type="application/octet-stream")


async def health(_):
    return web.Response(text="ok\n")


def main():
    global abandon_after
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for every interface")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--abandon-after", type=float, default=abandon_after.total_seconds(), metavar="SECONDS",
                   help="how long a cart keeps its items after its last add (default: 30 minutes)")
    p.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when standard input closes (for tests)")
    args = p.parse_args()
    abandon_after = timedelta(seconds=args.abandon_after)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")

    if args.stop_on_stdin_eof:
        def watch_stdin():
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    app = web.Application()
    app.add_routes([web.post("/statefun", statefun), web.get("/health", health)])
    web.run_app(app, host=args.host, port=args.port, access_log=None,
                print=lambda _: log.info("shop/cart listening on %s:%d", args.host, args.port))


if __name__ == "__main__":
    main()
