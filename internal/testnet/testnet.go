// Package testnet has network helpers for tests: a listener whose
// connections a test can cut, to lose the answers of requests in flight.
// Product code never imports it.
package testnet

import (
	"net"
	"sync"
)

// DropListener is a net.Listener that can drop every connection it has
// accepted: whatever the server answers to requests in flight is lost.
type DropListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// Listen listens on a free loopback port.
func Listen() (*DropListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &DropListener{Listener: ln}, nil
}

// Accept accepts a connection and keeps it for DropAll.
func (l *DropListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// DropAll closes every connection accepted so far.
func (l *DropListener) DropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
