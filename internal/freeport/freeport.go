// Package freeport hands out loopback ports for tests and the harness:
// ports nothing listens on and that this process has not handed out
// before, below Linux's ephemeral range.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Ports are taken below Linux's ephemeral range (32768-60999): a port the
// OS handed out for bind(0) can be handed out again, or become the source
// port of an outgoing connection, before the node that is meant to listen
// on it has started. That once put a node's client port on another node's
// Raft port, and the node that lost the race never started.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu sync.Mutex
	given   = map[string]bool{} // host:port handed out by this process
)

// Addr returns a host:port that this process has not handed out
// before and that nothing listens on right now.
func Addr(host string) (string, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		addr := net.JoinHostPort(host, strconv.Itoa(portLow+rand.IntN(portHigh-portLow)))
		if given[addr] {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		given[addr] = true
		return addr, nil
	}
	return "", fmt.Errorf("find free port on %s: none free in %d-%d after 1000 tries", host, portLow, portHigh)
}
