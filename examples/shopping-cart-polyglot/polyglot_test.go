package main

// The README's run, for real: the cart from a virtualenv with the pinned
// StateFun Python SDK, the inventory from `npm ci` of the pinned StateFun
// JavaScript SDK, both on free ports of 127.0.0.1, and this program's
// application (app.Run with module.yaml, as `go run
// ./examples/shopping-cart-polyglot -f module.yaml` runs it) with the Go
// checkout, on an in-process broker. Nothing is skipped: without python3 or
// node the test fails and says what to install.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/sdkcache"
	"github.com/stateloop/stateloop/topology"
	"github.com/stateloop/stateloop/topology/module"
)

// abandonAfter is the cart service's --abandon-after in the test: long
// enough for a cart's add and checkout to come before it on a loaded
// machine, short enough to wait for.
const abandonAfter = 8 * time.Second

var httpLine = regexp.MustCompile(`HTTP listener on http://([0-9.:]+) `)

// TestPolyglotShoppingCartEndToEnd runs the cart (Python SDK), the
// inventory (JavaScript SDK) and the checkout (Go) as one application:
// commands from the ingress topics as `stateloop send` writes them, then
// over HTTP with ?wait=, answered exactly as the README shows; the
// receipts on the topic receipts exactly once; and an abandoned cart
// giving its items back through a delayed message of the Python SDK.
func TestPolyglotShoppingCartEndToEnd(t *testing.T) {
	python := sdkcache.Python(t, "StateFun Python SDK (shopping-cart-polyglot)", filepath.Join("cart", "requirements.txt"), "polyglot-py-", "import statefun, aiohttp")
	node, modules := sdkcache.Node(t, "StateFun JavaScript SDK (shopping-cart-polyglot)", "inventory", "polyglot-js-", "apache-flink-statefun")
	cart := sdkcache.Serve(t, "cart.py", []string{"PYTHONUNBUFFERED=1"}, []string{python, filepath.Join("cart", "cart.py")}, "/health",
		"--stop-on-stdin-eof", "--abandon-after", fmt.Sprint(abandonAfter.Seconds()))
	inventory := sdkcache.Serve(t, "inventory.js", []string{"NODE_PATH=" + modules}, []string{node, filepath.Join("inventory", "inventory.js")}, "/health",
		"--stop-on-stdin-eof")

	// module.yaml with the services' ports.
	src, err := os.ReadFile("module.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for from, to := range map[string]string{"http://127.0.0.1:8000/": cart.URL + "/", "http://127.0.0.1:8001/": inventory.URL + "/"} {
		if !strings.Contains(text, from) {
			t.Fatalf("module.yaml does not name %s", from)
		}
		text = strings.ReplaceAll(text, from, to)
	}
	dir := t.TempDir()
	modulePath := filepath.Join(dir, "module.yaml")
	if err := os.WriteFile(modulePath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	brokers := kafkatest.StartKfake(t)
	r := apptest.Start(t, app.Flags{Brokers: brokers, DataDir: filepath.Join(dir, "data"), Partitions: 4, CommitInterval: 20 * time.Millisecond,
		LogLevel: "error", HTTP: "127.0.0.1:0", ModuleFiles: []string{modulePath}}, Build)
	r.WaitFor(t, "application "+App+" ready", 60*time.Second)
	m := httpLine.FindStringSubmatch(r.Out.String())
	if m == nil {
		t.Fatalf("no HTTP listener address in the output:\n%s", r.Out)
	}
	base := "http://" + m[1]
	client := kafkatest.Client(t, brokers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of the application:\n%s\ndead letters: %+v", r.Out, kafkatest.Records(t, client, App+"-dlq"))
		}
	})

	// From Kafka, one topic at a time (records of different topics have no
	// order between them). Restocks go to the JavaScript inventory.
	produce(t, client, shop.RestockTopic, `{"itemId":"socks","quantity":10}`, `{"itemId":"hat","quantity":5}`)
	waitForState(t, base, "shop/inventory/socks", `"stock":{"type":"io.statefun.types/int","value":10}`)
	waitForState(t, base, "shop/inventory/hat", `"stock":{"type":"io.statefun.types/int","value":5}`)
	// An add goes to the Python cart, which asks the inventory; the
	// inventory answers the cart. Bob's cart is left alone: abandoned later.
	bobAdded := time.Now()
	produce(t, client, shop.AddToCartTopic, `{"userId":"bob","itemId":"hat","quantity":2}`, `{"userId":"alice","itemId":"socks","quantity":2}`)
	waitForState(t, base, "shop/cart/alice", `"basket":{"type":"shop/Basket","value":{"socks":2}}`)
	waitForState(t, base, "shop/cart/bob", `"basket":{"type":"shop/Basket","value":{"hat":2}}`)
	waitForState(t, base, "shop/inventory/hat", `"value":3}`)
	// A checkout goes from the Python cart to the Go checkout, which writes
	// the receipt.
	produce(t, client, shop.CheckoutTopic, `{"userId":"alice"}`)
	waitForReceipts(t, client, 1)

	// Over HTTP, with the answers the README shows.
	for _, step := range []struct {
		to, typ, body string
		// wantType, wantFrom and want are the answer's type, its sender
		// and its body.
		wantType, wantFrom, want string
	}{
		{"shop/cart/carol", "shop/AddToCart", `{"itemId":"socks","quantity":3}`,
			"shop/CartView", "shop/cart/carol", `{"userId":"carol","items":[{"itemId":"socks","quantity":3}],"event":"added 3 socks"}`},
		{"shop/cart/carol", "shop/AddToCart", `{"itemId":"socks","quantity":6}`,
			"shop/CartView", "shop/cart/carol", `{"userId":"carol","items":[{"itemId":"socks","quantity":3}],"event":"socks: 6 asked, 5 in stock"}`},
		{"shop/cart/carol", "shop/AddToCart", `{"itemId":"socks","quantity":0}`,
			"shop/CartView", "shop/cart/carol", `{"userId":"carol","items":[{"itemId":"socks","quantity":3}],"event":"rejected: want an itemId and a quantity of at least 1, got 'socks' and 0"}`},
		{"shop/cart/carol", "shop/Checkout", `{}`,
			"shop/Receipt", "shop/cart/carol", `{"orderId":"carol-1","userId":"carol","items":[{"itemId":"socks","quantity":3}],"totalItems":3}`},
		{"shop/cart/carol", "shop/Checkout", `{}`,
			"shop/CartView", "shop/cart/carol", `{"userId":"carol","items":[],"event":"the cart is empty: nothing to check out"}`},
		// 10 - 2 (alice) - 3 (carol) + 6
		{"shop/inventory/socks", "shop/RestockItem", `{"quantity":6}`,
			"shop/StockLevel", "shop/inventory/socks", `{"itemId":"socks","inStock":11}`},
	} {
		typ, from, body := post(t, base+"/v1/functions/"+step.to+"?wait=20s", step.typ, step.body)
		if typ != step.wantType || from != step.wantFrom || body != step.want {
			t.Errorf("POST %s to %s: answer %s from %s:\n  %s\nwant %s from %s:\n  %s", step.body, step.to, typ, from, body, step.wantType, step.wantFrom, step.want)
		}
	}

	// Each receipt once, keyed by its user, as the Go checkout wrote it.
	got := waitForReceipts(t, client, 2)
	want := []string{
		`alice {"orderId":"alice-1","userId":"alice","items":[{"itemId":"socks","quantity":2}],"totalItems":2}`,
		`carol {"orderId":"carol-1","userId":"carol","items":[{"itemId":"socks","quantity":3}],"totalItems":3}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("receipts (-want +got):\n%s", diff)
	}

	// Bob's cart sent itself a ClearCart abandonAfter after his add (a
	// delayed message of the Python SDK) and gave the hats back.
	waitForState(t, base, "shop/inventory/hat", `"value":5}`)
	if since := time.Since(bobAdded); since < abandonAfter {
		t.Errorf("bob's hats came back %v after his add, before the %v a cart waits", since, abandonAfter)
	}
	if status, body := get(t, base+"/v1/state/shop/cart/bob"); status != http.StatusNotFound {
		t.Errorf("bob's abandoned cart: %d %s, want 404: no state left", status, body)
	}

	if dl := kafkatest.Records(t, client, App+"-dlq"); len(dl) != 0 {
		t.Errorf("%d dead letters, want none: %+v", len(dl), dl)
	}
}

// TestWithoutModuleFileNothingServesTheCartAndInventory: the Go program
// alone lists the remote types, so forgetting -f module.yaml fails at
// start-up naming them (processor.New checks this).
func TestWithoutModuleFileNothingServesTheCartAndInventory(t *testing.T) {
	topo, reg := Build()
	if err := topo.Validate(); err != nil {
		t.Fatalf("topology: %v", err)
	}
	if err := topo.ValidateRegistry(reg); err != nil {
		t.Fatalf("registry: %v", err)
	}
	err := topo.ValidateServed(reg, nil)
	for _, fn := range []string{"shop/cart", "shop/inventory"} {
		if err == nil || !strings.Contains(err.Error(), fn) || !strings.Contains(err.Error(), "module.yaml") {
			t.Errorf("without a module file: %v; want %s reported as served by nothing, with a hint to module.yaml", err, fn)
		}
	}
	if err != nil && strings.Contains(err.Error(), "shop/checkout") {
		t.Errorf("shop/checkout reported unserved, but it is the Go function: %v", err)
	}
}

// TestModuleFileServesTheCartAndInventory: module.yaml binds exactly the
// Python and JavaScript types to their services; shop/checkout stays Go.
func TestModuleFileServesTheCartAndInventory(t *testing.T) {
	m, err := module.ParseFile("module.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) > 0 {
		t.Errorf("warnings: %v", m.Warnings)
	}
	urls := map[functions.TypeName]string{}
	for _, fn := range []functions.TypeName{shop.CartFunction, shop.InventoryFunction} {
		if e, ok := m.EndpointFor(fn); ok {
			urls[fn] = e.URLFor(fn)
		}
	}
	if e, ok := m.EndpointFor(shop.CheckoutFunction); ok {
		t.Errorf("module.yaml binds shop/checkout to %s; it is the Go function", e.URLFor(shop.CheckoutFunction))
	}
	if diff := cmp.Diff(map[functions.TypeName]string{shop.CartFunction: "http://127.0.0.1:8000/statefun", shop.InventoryFunction: "http://127.0.0.1:8001/statefun"}, urls); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if len(m.Ingresses) > 0 || len(m.Egresses) > 0 {
		t.Errorf("module.yaml declares ingresses or egresses; the Go topology has them")
	}
}

// TestSDKPinsMatchInterop: the example pins the SDKs that the interop tests
// test, package for package.
func TestSDKPinsMatchInterop(t *testing.T) {
	if diff := cmp.Diff(sdkcache.RequirementPins(t, "../../internal/interop/python/requirements.txt"), sdkcache.RequirementPins(t, "cart/requirements.txt")); diff != "" {
		t.Errorf("cart/requirements.txt differs from internal/interop/python/requirements.txt (-interop +example):\n%s", diff)
	}
	if diff := cmp.Diff(sdkcache.LockedPackages(t, "../../internal/interop/js/package-lock.json"), sdkcache.LockedPackages(t, "inventory/package-lock.json")); diff != "" {
		t.Errorf("inventory/package-lock.json locks other packages than internal/interop/js/package-lock.json (-interop +example):\n%s", diff)
	}
}

// produce writes JSON records to a topic in order, without keys (the
// routers read the ids from the values), as `stateloop send --topic` does.
func produce(t *testing.T, client sarama.Client, topic topology.Topic, values ...string) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, v := range values {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: string(topic), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// waitForReceipts reads the committed receipts until there are n, for up
// to 30 s, and returns them as "key value", sorted.
func waitForReceipts(t *testing.T, client sarama.Client, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := kafkatest.Records(t, client, string(shop.ReceiptsTopic))
		if len(recs) >= n {
			out := make([]string, len(recs))
			for i, rec := range recs {
				out[i] = string(rec.Key) + " " + string(rec.Value)
			}
			slices.Sort(out)
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipts after 30s, want %d", len(recs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForState polls the committed state of an address until its JSON
// contains want, for up to 30 s (abandonAfter longer for the abandoned cart).
func waitForState(t *testing.T, base, address, want string) {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + abandonAfter)
	for {
		status, body := get(t, base+"/v1/state/"+address)
		if status == http.StatusOK && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state of %s: %d %s; want it to contain %s", address, status, body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a message of type typ to url as the README's curl commands do
// and returns the answer's type, its sender and its body; an answer other
// than 200 fails the test.
func post(t *testing.T, url, typ, body string) (string, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd."+typ)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %s %s; want 200 with the answer", url, body, resp.Status, b)
	}
	return resp.Header.Get("Stateloop-Type"), resp.Header.Get("Stateloop-Replier"), string(b)
}
