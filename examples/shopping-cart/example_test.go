package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/app/apptest"
	"github.com/stateloop/stateloop/examples/shopping-cart/shop"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

var httpLine = regexp.MustCompile(`HTTP listener on http://([0-9.:]+) `)

// TestShoppingCartEndToEnd runs the application with app.Run, as `stateloop
// run shopping-cart --http 127.0.0.1:8080` does, on an in-process broker:
// commands written to the ingress topics as `stateloop send` writes them,
// then commands through the HTTP listener with ?wait=, which answer with
// the cart and the receipt; the receipts are read from the topic
// receipts with read_committed.
func TestShoppingCartEndToEnd(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	r := apptest.Start(t, app.Flags{Brokers: brokers, DataDir: t.TempDir(), Partitions: 4, CommitInterval: 20 * time.Millisecond,
		LogLevel: "error", HTTP: "127.0.0.1:0"}, shop.Build)
	r.WaitFor(t, "application shopping-cart ready", 30*time.Second)
	m := httpLine.FindStringSubmatch(r.Out.String())
	if m == nil {
		t.Fatalf("no HTTP listener address in the output:\n%s", r.Out)
	}
	base := "http://" + m[1]

	client := kafkatest.Client(t, brokers)
	// Records of different topics have no order between them: wait for
	// each step's effect before the next step's records.
	produce(t, client, []record{{shop.RestockTopic, `{"itemId":"socks","quantity":10}`}})
	waitForState(t, base+"/v1/state/shop/inventory/socks", `"value":10`)
	produce(t, client, []record{
		{shop.AddToCartTopic, `{"userId":"alice","itemId":"socks","quantity":2}`},
		{shop.AddToCartTopic, `{"userId":"bob","itemId":"socks","quantity":1}`},
	})
	waitForState(t, base+"/v1/state/shop/cart/alice", `"value":{"socks":2}`)
	produce(t, client, []record{{shop.CheckoutTopic, `{"userId":"alice"}`}})
	receipts := waitForReceipts(t, client, 1)
	want := shop.Receipt{OrderID: "alice-1", UserID: "alice", Items: []shop.Line{{ItemID: "socks", Quantity: 2}}, TotalItems: 2}
	if diff := cmp.Diff(want, receipts[0]); diff != "" {
		t.Errorf("alice's receipt (-want +got):\n%s", diff)
	}

	var view shop.CartView
	post(t, base+"/v1/functions/shop/cart/carol?wait=20s", "shop/AddToCart", `{"itemId":"socks","quantity":3}`, "shop/CartView", &view)
	if want := (shop.CartView{UserID: "carol", Items: []shop.Line{{ItemID: "socks", Quantity: 3}}, Event: "added 3 socks"}); !cmp.Equal(want, view) {
		t.Errorf("reply to carol's add: got %+v, want %+v", view, want)
	}
	post(t, base+"/v1/functions/shop/cart/carol?wait=20s", "shop/AddToCart", `{"itemId":"socks","quantity":5}`, "shop/CartView", &view)
	if view.Event != "socks: 5 asked, 4 in stock" {
		t.Errorf("reply to carol's second add: got %+v, want 4 socks left and 5 asked", view)
	}
	var receipt shop.Receipt
	post(t, base+"/v1/functions/shop/cart/carol?wait=20s", "shop/Checkout", `{}`, "shop/Receipt", &receipt)
	if want := (shop.Receipt{OrderID: "carol-1", UserID: "carol", Items: []shop.Line{{ItemID: "socks", Quantity: 3}}, TotalItems: 3}); !cmp.Equal(want, receipt) {
		t.Errorf("reply to carol's checkout: got %+v, want %+v", receipt, want)
	}
	var level shop.StockLevel
	post(t, base+"/v1/functions/shop/inventory/socks?wait=20s", "shop/RestockItem", `{"quantity":6}`, "shop/StockLevel", &level)
	if want := (shop.StockLevel{ItemID: "socks", InStock: 10}); level != want {
		t.Errorf("reply to the restock: got %+v, want %+v (10 - 2 - 1 - 3 + 6)", level, want)
	}
	if got := waitForReceipts(t, client, 2); got[1].OrderID != "carol-1" {
		t.Errorf("second receipt on the topic: %+v, want carol's", got[1])
	}
	if dl := kafkatest.Records(t, client, shop.App+"-dlq"); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
}

type record struct {
	topic topology.Topic
	value string
}

// produce writes JSON records in order, without keys (the routers read
// the ids from the values).
func produce(t *testing.T, client sarama.Client, recs []record) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, r := range recs {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: string(r.topic), Value: sarama.StringEncoder(r.value)}); err != nil {
			t.Fatalf("produce to %s: %v", r.topic, err)
		}
	}
}

// waitForReceipts reads the committed receipts until there are n, for up
// to 20 s.
func waitForReceipts(t *testing.T, client sarama.Client, n int) []shop.Receipt {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs := kafkatest.Records(t, client, string(shop.ReceiptsTopic))
		if len(recs) >= n {
			out := make([]shop.Receipt, len(recs))
			for i, rec := range recs {
				if err := json.Unmarshal(rec.Value, &out[i]); err != nil {
					t.Fatalf("receipt %q: %v", rec.Value, err)
				}
				if string(rec.Key) != out[i].UserID {
					t.Errorf("receipt %s has key %q, want the user", out[i].OrderID, rec.Key)
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipts after 20s, want %d; dead letters: %+v", len(recs), n, kafkatest.Records(t, client, shop.App+"-dlq"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForState polls the committed state at url until it contains want,
// for up to 20 s.
func waitForState(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %s %s after 20s, want %s", url, resp.Status, b, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// post sends a message of type typ to the URL, as curl does in README.md,
// checks that the reply has type want and decodes it into v.
func post(t *testing.T, url, typ, body, want string, v any) {
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
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Stateloop-Type") != want {
		t.Fatalf("POST %s: %s, type %q: %s; want 200 with a %s", url, resp.Status, resp.Header.Get("Stateloop-Type"), b, want)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("POST %s: reply %q: %v", url, b, err)
	}
}
