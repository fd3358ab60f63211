package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/stateloop/stateloop/functions"
)

// Backoff between attempts: 10 ms doubling (as StateFun's OkHttp
// transport), at most maxBackoff, each with up to half of it as random
// jitter so that many addresses failing together do not retry in step.
const (
	initialBackoff = 10 * time.Millisecond
	maxBackoff     = 2 * time.Second
	contentType    = "application/octet-stream"
	snippetBytes   = 256
	drainBytes     = 64 << 10
)

// post sends body until decode takes a response body, a permanent error
// occurs, ctx ends (its error is returned) or callCtx's deadline (the call
// budget) passes. decode must copy what it keeps of the body; its error is
// a permanent protocol error.
func (inv *invocation) post(ctx, callCtx context.Context, body []byte, decode func([]byte) error) error {
	deadline, _ := callCtx.Deadline()
	backoff := initialBackoff
	for {
		retryAfter, err := inv.attempt(callCtx, body, decode)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if functions.IsPermanent(err) {
			return err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		wait = max(wait, retryAfter)
		if remaining := time.Until(deadline); wait >= remaining || callCtx.Err() != nil {
			return newDetail(ErrCallTimeout, err, fmt.Sprintf(
				"no usable response within the call timeout of %v (%d attempts); last attempt: %v; check that the function is running and reachable at this URL, or raise the endpoint's call timeout%s",
				inv.c.cfg.CallTimeout, inv.attempts, err, inv.hint2()))
		}
		inv.c.cfg.Logger.Warn("remote function call failed, retrying", "function_type", inv.target.Type, "function_id", inv.target.ID,
			"url", inv.ts.url, "attempt", inv.attempts, "backoff", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-callCtx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// hint2 names the likely cause of a StateFun 3.x endpoint's function
// type that has only ever answered with server errors: a StateFun 2.x
// function, which reads its states in the request (they are declared in
// the module file in 2.x) and fails (a KeyError in the Python SDK 2.x, an
// HTTP 500) when a 3.x request carries none.
func (inv *invocation) hint2() string {
	if inv.c.cfg.Protocol != Protocol3 || inv.status < 500 || inv.ts.warm.Load() {
		return ""
	}
	return "; no call of this function type has succeeded yet: if it runs a StateFun 2.x SDK (apache-flink-statefun 2.x, messages as protobuf Any, " +
		"state by context[name]), this is how it fails behind a StateFun 3.x endpoint, without its states: declare it in a StateFun 2.x module file " +
		"(version: \"2.0\", with its states)"
}

// attempt makes one HTTP request and hands a successful response's body
// to decode. A returned error is permanent (functions.IsPermanent) or
// worth retrying, after at least retryAfter when the response said so.
func (inv *invocation) attempt(ctx context.Context, body []byte, decode func([]byte) error) (time.Duration, error) {
	c := inv.c
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for a free connection: %w", ctx.Err())
	}
	inv.attempts++
	inv.status = 0
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inv.ts.url, bytes.NewReader(body))
	if err != nil {
		return 0, functions.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", contentType)
	req.Header.Set("User-Agent", "stateloop")
	if inv.traceParent != "" {
		req.Header.Set("traceparent", inv.traceParent)
		if inv.traceState != "" {
			req.Header.Set("tracestate", inv.traceState)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message already
		}
		if isTLSConfigError(err) {
			return 0, functions.Permanent(fmt.Errorf("TLS handshake: %w; check the endpoint's certificate, the CA file and the client certificate", err))
		}
		return 0, fmt.Errorf("send request: %w", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	inv.status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return retryAfter(resp), statusError(resp)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || !strings.EqualFold(mt, contentType) {
		return 0, protocolError("response Content-Type is %q, want %s: the URL does not point at a StateFun SDK handler",
			resp.Header.Get("Content-Type"), contentType)
	}
	buf := bufferPool.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1)); err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	if int64(buf.Len()) > c.cfg.MaxResponseBytes {
		return 0, protocolError("response is larger than the limit of %d bytes", c.cfg.MaxResponseBytes)
	}
	if err := decode(buf.Bytes()); err != nil {
		return 0, protocolError("response body (%d bytes) is not a FromFunction message: %v; check that the endpoint runs a %s SDK", buf.Len(), err, c.cfg.Protocol)
	}
	return 0, nil
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufferPool.Put(b)
	}
}

// retryable reports the statuses StateFun's OkHttp transport retries.
func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, 420, http.StatusTooManyRequests, 499:
		return true
	}
	return status >= 500
}

// statusError describes a non-2xx response; it is permanent unless the
// status is retryable.
func statusError(resp *http.Response) error {
	msg := "HTTP " + resp.Status
	if s := snippet(resp.Body); s != "" {
		msg += ": " + s
	}
	if retryable(resp.StatusCode) {
		return errors.New(msg)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		msg += " (not retried): check the endpoint's URL template and that the function type is registered with the SDK there"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		msg += fmt.Sprintf(" (not retried): redirected to %q; put the final URL into the endpoint's URL template", resp.Header.Get("Location"))
	default:
		msg += " (not retried): the function's HTTP handler rejected the request"
	}
	return functions.Permanent(newDetail(ErrProtocol, nil, msg))
}

// snippet returns the start of an error response body as one clean line.
func snippet(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, snippetBytes))
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// isTLSConfigError reports certificate problems, which retrying cannot
// fix: the server's certificate does not verify, or the server sent a TLS
// alert (crypto/tls reports one as a *net.OpError with Op "remote error"),
// such as "certificate required" or "bad certificate" for a missing or
// untrusted client certificate.
func isTLSConfigError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		op       *net.OpError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &alert) || errors.As(err, &op) && op.Op == "remote error"
}
