// The inventory of the polyglot shopping cart (examples/shopping-cart-polyglot),
// written with the official StateFun JavaScript SDK (apache-flink-statefun
// 3.3.0 from npm) and served with Node's http module: stateloop calls it as
// the remote function shop/inventory that module.yaml binds to this service.
//
// shop/inventory/<item> is the stock of an item, with the semantics and
// messages of the Go inventory of examples/shopping-cart (shop/inventory.go):
//
// - shop/RestockItem {"quantity"} adds to the stock and answers the caller
//   (an HTTP request with ?wait=; a record from Kafka has none) with a
//   shop/StockLevel {"itemId", "inStock"};
// - shop/RequestItem {"quantity"}, from a cart (Python), reserves the
//   quantity if it is in stock and answers the cart either way with a
//   shop/ItemAvailability {"itemId", "status", "quantity", "left"}, status
//   IN_STOCK or OUT_OF_STOCK;
// - shop/ReleaseItem {"quantity"}, from a cart, takes back what it had
//   reserved.
//
// The stock is the int state "stock" (io.statefun.types/int: the JavaScript
// SDK has no long type, so at most 2,147,483,647 of an item). A restock with
// a quantity below 1 changes nothing and is answered with the stock as it is
// (the Go inventory sends it to the dead-letter topic instead: a remote
// function has no way to say "do not retry"). A message of another type
// fails the call with HTTP 500, which stateloop retries within the
// endpoint's call timeout and then writes to the dead-letter topic.
//
// The service answers StateFun's request-reply protocol on POST /statefun
// (the urlPathTemplate of module.yaml) and "ok" on GET /health.
//
// Usage: node inventory.js [--host 127.0.0.1] [--port 8001] [--stop-on-stdin-eof]
//
// --stop-on-stdin-eof makes the service exit when its standard input closes,
// so that it does not outlive a test that starts it.
"use strict";

const http = require("http");
const { parseArgs } = require("util");
const { StateFun, messageBuilder } = require("apache-flink-statefun");

// The messages, with the type names of examples/shopping-cart/shop/types.go;
// JSON.stringify writes them without spaces, as Go does.
const RESTOCK_ITEM = StateFun.jsonType("shop/RestockItem");
const REQUEST_ITEM = StateFun.jsonType("shop/RequestItem");
const RELEASE_ITEM = StateFun.jsonType("shop/ReleaseItem");
const ITEM_AVAILABILITY = StateFun.jsonType("shop/ItemAvailability");
const STOCK_LEVEL = StateFun.jsonType("shop/StockLevel");

const IN_STOCK = "IN_STOCK";
const OUT_OF_STOCK = "OUT_OF_STOCK";

// reply answers the message's caller, if it has one.
function reply(context, valueType, value) {
  if (context.caller !== null) {
    context.send(messageBuilder({ typename: context.caller.typename, id: context.caller.id, value, valueType }));
  }
}

function restock(context, r) {
  const stock = context.storage.stock || 0;
  if (!Number.isInteger(r.quantity) || r.quantity < 1) {
    console.log(`${context.self.id}: restock rejected: quantity ${JSON.stringify(r.quantity)}: want at least 1`);
    reply(context, STOCK_LEVEL, { itemId: context.self.id, inStock: stock });
    return;
  }
  context.storage.stock = stock + r.quantity;
  reply(context, STOCK_LEVEL, { itemId: context.self.id, inStock: stock + r.quantity });
}

function requestItem(context, r) {
  const stock = context.storage.stock || 0;
  const a = { itemId: context.self.id, status: OUT_OF_STOCK, quantity: r.quantity, left: stock };
  if (r.quantity <= stock) {
    a.status = IN_STOCK;
    a.left = stock - r.quantity;
    context.storage.stock = a.left;
  }
  reply(context, ITEM_AVAILABILITY, a);
}

function releaseItem(context, r) {
  context.storage.stock = (context.storage.stock || 0) + r.quantity;
}

function build() {
  const statefun = new StateFun();
  statefun.bind({
    typename: "shop/inventory",
    specs: [{ name: "stock", type: StateFun.intType() }],
    fn(context, message) {
      for (const [type, handle] of [[RESTOCK_ITEM, restock], [REQUEST_ITEM, requestItem], [RELEASE_ITEM, releaseItem]]) {
        if (message.is(type)) {
          handle(context, message.as(type));
          return;
        }
      }
      throw new Error(`shop/inventory/${context.self.id}: unhandled message type ${message.valueTypeName}`);
    },
  });
  return statefun;
}

function main() {
  const { values: args } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8001" },
      "stop-on-stdin-eof": { type: "boolean", default: false },
    },
  });
  const statefun = build();
  const handle = statefun.handler();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://localhost").pathname;
    if (req.method === "GET" && path === "/health") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok\n");
      return;
    }
    if (req.method !== "POST" || path !== "/statefun") {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found: the functions answer POST /statefun\n");
      return;
    }
    handle(req, res);
  });
  server.listen(Number(args.port), args.host, () => console.log(`shop/inventory listening on ${args.host}:${args.port}`));
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
  if (args["stop-on-stdin-eof"]) {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.resume();
  }
}

main();
