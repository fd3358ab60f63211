package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of the listener's limits in Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxConns          = 1000
	// maxHeaderBytes bounds a request's header.
	maxHeaderBytes = 64 << 10
)

// Serve serves the API on ln until Shutdown, with the limits of the
// Config: a request must send its header within ReadHeaderTimeout and all
// of it within ReadTimeout; its answer must be written within
// WriteTimeout (a request with ?wait= has its wait on top); a connection
// idle for IdleTimeout is closed; and at most MaxConns connections are
// open at once: more wait to be accepted until one closes, so a flood of
// slow clients cannot use up the process's file descriptors. Serve returns
// nil after Shutdown, else the error that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.http == nil {
		s.http = &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
			ReadTimeout:       s.cfg.ReadTimeout,
			WriteTimeout:      s.cfg.WriteTimeout,
			IdleTimeout:       s.cfg.IdleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		}
	}
	hs := s.http
	s.mu.Unlock()
	err := hs.Serve(limitListener(ln, s.cfg.MaxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops Serve: it closes the listener and idle connections and
// waits for the requests in progress to end, or for ctx to end (then it
// returns ctx's error). Close the Server after it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	return hs.Shutdown(ctx)
}

// limitListener returns a listener that has at most n of its connections
// open at once: Accept waits for one to close first. Connections beyond n
// wait in the kernel's accept queue instead of taking a file descriptor
// each.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots     chan struct{} // one element per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when it is closed the first time.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
