package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// browser drives headless Chromium over the DevTools protocol for the
// console tests that click: Chromium started with --remote-debugging-pipe
// reads commands from its file descriptor 3 and writes answers and events
// to 4, each a JSON message ended by a NUL byte. No WebSocket and no
// library are needed.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      *os.File // commands, Chromium's fd 3
	stderr  bytes.Buffer
	session string // the page's session (Target.attachToTarget, flattened)

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpAnswer
	closed  error // the pipe from Chromium ended
}

type cdpAnswer struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// startBrowser starts Chromium with one page of width x height pixels and
// stops it when the test ends.
func startBrowser(t *testing.T, bin string, width, height int) *browser {
	t.Helper()
	cmdIn, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out, cmdOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, in: in, pending: make(map[int]chan cdpAnswer)}
	b.cmd = exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
		"--user-data-dir="+t.TempDir(), "--no-first-run", "--disable-extensions", "--hide-scrollbars", "about:blank")
	b.cmd.ExtraFiles = []*os.File{cmdIn, cmdOut}
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	cmdIn.Close()
	cmdOut.Close()
	done := make(chan struct{})
	go func() { defer close(done); b.read(out) }()
	t.Cleanup(func() {
		_ = in.Close() // Chromium exits when its pipe closes
		exited := make(chan struct{})
		go func() { _ = b.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-exited
		}
		out.Close()
		<-done
	})

	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

// read dispatches Chromium's answers to their calls; events are dropped.
func (b *browser) read(out *os.File) {
	r := bufio.NewReaderSize(out, 1<<20)
	var err error
	for {
		var msg []byte
		msg, err = r.ReadBytes(0)
		if err != nil {
			break
		}
		var a cdpAnswer
		if json.Unmarshal(msg[:len(msg)-1], &a) != nil || a.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.pending[a.ID]
		delete(b.pending, a.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
	b.mu.Lock()
	b.closed = fmt.Errorf("the pipe from Chromium ended: %v", err)
	for id, ch := range b.pending {
		close(ch)
		delete(b.pending, id)
	}
	b.mu.Unlock()
}

// call sends a command (to the page's session, or to the browser if
// session is "") and decodes its result into result, if not nil; an
// error answer fails the test.
func (b *browser) call(session, method string, params, result any) {
	b.t.Helper()
	b.mu.Lock()
	if b.closed != nil {
		b.mu.Unlock()
		b.t.Fatalf("%s: %v\n%s", method, b.closed, b.stderr.String())
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpAnswer, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.in.Write(append(data, 0)); err != nil {
		b.t.Fatalf("%s: writing to Chromium: %v", method, err)
	}
	select {
	case a, ok := <-ch:
		if !ok {
			b.t.Fatalf("%s: Chromium went away\n%s", method, b.stderr.String())
		}
		if a.Error != nil {
			b.t.Fatalf("%s: %s (%d)", method, a.Error.Message, a.Error.Code)
		}
		if result != nil {
			if err := json.Unmarshal(a.Result, result); err != nil {
				b.t.Fatalf("%s: result %s: %v", method, a.Result, err)
			}
		}
	case <-time.After(60 * time.Second):
		b.t.Fatalf("%s: no answer from Chromium in 60 s", method)
	}
}

// open loads url in the page and waits until its script has run.
func (b *browser) open(url string) {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
	b.waitFor("the page to load", `document.readyState === "complete" && location.href !== "about:blank"`)
}

// eval evaluates a JavaScript expression in the page (awaiting a
// promise) and decodes its value into v, if not nil. An exception fails
// the test.
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &res)
	if res.Exception != nil {
		b.t.Fatalf("evaluating %s: %s %s", expr, res.Exception.Text, res.Exception.Exception.Description)
	}
	if v != nil && len(res.Result.Value) > 0 {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			b.t.Fatalf("evaluating %s: value %s: %v", expr, res.Result.Value, err)
		}
	}
}

// text returns the text of the first element that matches a CSS
// selector, or "" if none does.
func (b *browser) text(selector string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, selector), &s)
	return s
}

// waitFor waits up to 30 s until the expression is true in the page,
// failing the test with what it waited for and the page's text if not.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		b.eval("!!("+expr+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited 30 s for %s (%s); the page shows:\n%s", what, expr, b.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// do runs JavaScript statements in the page (a click, filling a form).
func (b *browser) do(js string) {
	b.t.Helper()
	b.eval("(() => {"+js+"})()", nil)
}

// screenshot saves a PNG of the element that matches selector (the whole
// page for "body") to path, and returns its bytes.
func (b *browser) screenshot(selector, path string) []byte {
	b.t.Helper()
	var r struct{ X, Y, Width, Height float64 }
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); const r = e.getBoundingClientRect();
		return {X: r.left + scrollX, Y: r.top + scrollY, Width: r.width, Height: r.height}; })()`, selector), &r)
	pad := 6.0
	if selector == "body" {
		pad = 0
	}
	clip := map[string]any{"x": max(r.X-pad, 0), "y": max(r.Y-pad, 0), "width": r.Width + 2*pad, "height": r.Height + 2*pad, "scale": 1}
	var shot struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png", "clip": clip, "captureBeyondViewport": true}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatalf("screenshot of %s: %v", selector, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return png
}
