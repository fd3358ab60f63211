package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawTimeout bounds one request of a rawClient.
const rawTimeout = 10 * time.Second

// rawClient sends Kafka requests at exactly the version they carry over
// one connection, one at a time, reconnecting after an error. The broker
// child uses it to talk to its own kfake cluster.
type rawClient struct {
	addr string
	fmt  *kmsg.RequestFormatter

	mu   sync.Mutex // one request at a time
	corr int32

	connMu sync.Mutex
	conn   net.Conn
	closed bool
}

func newRawClient(addr string) *rawClient {
	return &rawClient{addr: addr, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("stateloop-embedded-broker"))}
}

// request sends req and returns the broker's response, decoded at the
// request's version.
func (c *rawClient) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.roundTrip(ctx, conn, req)
	if err != nil {
		c.connMu.Lock()
		if c.conn == conn {
			c.conn = nil
		}
		c.connMu.Unlock()
		_ = conn.Close()
	}
	return resp, err
}

// connect returns the connection, dialing it if there is none.
func (c *rawClient) connect(ctx context.Context) (net.Conn, error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.conn == nil {
		d := net.Dialer{Timeout: rawTimeout}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	return c.conn, nil
}

func (c *rawClient) roundTrip(ctx context.Context, conn net.Conn, req kmsg.Request) (kmsg.Response, error) {
	deadline := time.Now().Add(rawTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	corr, err := c.send(conn, req)
	if err != nil {
		return nil, err
	}
	return receive(conn, req, corr)
}

// send writes req to conn with the next correlation id and returns it.
func (c *rawClient) send(conn net.Conn, req kmsg.Request) (int32, error) {
	c.corr++
	_, err := conn.Write(c.fmt.AppendRequest(nil, req, c.corr))
	return c.corr, err
}

// receive reads the answer to req, sent with correlation id corr.
func receive(conn net.Conn, req kmsg.Request, corr int32) (kmsg.Response, error) {
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != corr {
		return nil, errors.New("embedded: response with the wrong correlation id")
	}
	body = body[4:]
	// flexible responses have a tagged-field section in their header,
	// except ApiVersions
	if req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("embedded: decoding the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("embedded: bad tagged fields")
	}
	b = b[l:]
	for range n {
		_, l := binary.Uvarint(b) // tag
		if l <= 0 {
			return nil, errors.New("embedded: bad tagged fields")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < size {
			return nil, errors.New("embedded: bad tagged fields")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// close closes the connection, ending a request in flight, and makes
// later requests fail.
func (c *rawClient) close() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.closed = true
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}
