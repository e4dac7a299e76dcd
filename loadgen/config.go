// Package loadgen drives an orderly cluster the way the seed's client did,
// only harder and with better numbers: C concurrent customers each place
// orders in sequence (or until a deadline), with an optional share of
// reads; latencies go into HDR histograms, overall and per second.
package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"orderly/wire"
)

// Mix says which laptop types a run orders.
type Mix string

const (
	MixRegular Mix = "regular"
	MixCustom  Mix = "custom"
	MixMixed   Mix = "mixed" // alternate, starting with regular
)

// ParseMix parses regular, custom or mixed.
func ParseMix(s string) (Mix, error) {
	switch m := Mix(s); m {
	case MixRegular, MixCustom, MixMixed:
		return m, nil
	}
	return "", fmt.Errorf("order type %q: want regular, custom or mixed", s)
}

// Config describes one run.
type Config struct {
	Addrs []string // nodes or balancers
	// TLS is the clients' (pki.Source.ClientConfig); nil dials plaintext.
	TLS       func(serverName string) *tls.Config `json:"-"`
	Customers int                                 // concurrent customers
	Orders    int                                 // orders per customer; 0: until Duration
	Duration  time.Duration
	Mix       Mix
	// ReadPct is the share of operations (0-100) that read the customer's
	// record instead of ordering.
	ReadPct     int
	Consistency wire.Consistency
	// Pipeline is how many requests each customer keeps in flight, each in
	// a session of its own over the customer's connections.
	Pipeline int
	// Conns is how many clients (each with one connection per address)
	// the customers share, round-robin; 0 gives every customer its own, as
	// the seed's client did. Shared connections carry many customers'
	// requests per system call, the way etcd's benchmark shares gRPC
	// connections among its clients.
	Conns int
	// Watchers follow the change feed (every customer, from the start)
	// during the run, each on a connection of its own; the result says
	// how many orders reached them.
	Watchers int
	// Seed speaks the seed's protocol to Addrs[0], a balancer's seed port,
	// as the seed's client did: one connection per customer, one request
	// in flight (Conns, Pipeline, Consistency and TLS do not apply: the
	// port reads at the balancer's --read-consistency).
	Seed bool
	// HTTP, if set (HTTP1 or HTTP2), sends the orders and reads to
	// Addrs[0], a side port (--http-addr), through the /v1/ API in that
	// HTTP version: over HTTP/1.1 a keep-alive connection per customer,
	// over HTTP/2 Conns connections (Pipeline does not apply; Watchers
	// are not run).
	HTTP string
	// WatchFrom is the index the watchers start at (0: now); an old one
	// measures how fast a watcher catches up on a backlog.
	WatchFrom    uint64
	RetryTimeout time.Duration
	// Rate, if set, bounds the operations per second over all customers
	// (a token bucket they share); 0: each customer's next operation goes
	// as soon as its last is answered. A latency counts from the send,
	// after the wait for a token.
	Rate float64
	// FirstCustomer offsets customer ids, so runs can use disjoint ones.
	FirstCustomer int32
	// NewCustomers, if set, makes every order the first of a customer the
	// cluster has not seen: that many of them, their ids in a random order
	// over [0, 2^31) (NewCustomerID), shared out among the customers'
	// workers; the run ends when all are placed (or at Duration).
	// FirstCustomer and Orders do not apply; no reads.
	NewCustomers int
	// Progress, when set, gets a live line every second: rewritten in
	// place on a terminal, or a plain line per second with PlainProgress
	// (a log file, a pipe).
	Progress      io.Writer
	PlainProgress bool
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("no addresses")
	case c.Customers <= 0:
		return fmt.Errorf("customers %d: want at least 1", c.Customers)
	case c.Orders < 0:
		return fmt.Errorf("orders %d is negative", c.Orders)
	case c.NewCustomers < 0:
		return fmt.Errorf("new customers %d is negative", c.NewCustomers)
	case c.NewCustomers > 0 && (c.ReadPct > 0 || c.Seed):
		return errors.New("new customers: every operation is a first order, through the orderly port (no reads, no seed port)")
	case c.Orders == 0 && c.Duration <= 0 && c.NewCustomers == 0:
		return errors.New("give a number of orders, a duration, new customers, or some of them")
	case c.Rate < 0:
		return fmt.Errorf("rate %g: want 0 (no bound) or more", c.Rate)
	case c.ReadPct < 0 || c.ReadPct > 100:
		return fmt.Errorf("read share %d%%: want 0-100", c.ReadPct)
	case c.Pipeline <= 0:
		return fmt.Errorf("pipeline %d: want at least 1", c.Pipeline)
	case c.HTTP != "" && (c.Seed || c.Pipeline > 1 || c.NewCustomers > 0 || c.Watchers > 0):
		return errors.New("http: orders and reads of existing customers, one in flight per customer (no seed port, pipeline, new customers or watchers)")
	case c.Seed && c.Pipeline > 1:
		return fmt.Errorf("pipeline %d: the seed's protocol has one request in flight per connection", c.Pipeline)
	case c.Conns < 0:
		return fmt.Errorf("conns %d is negative", c.Conns)
	case c.FirstCustomer < 0:
		return fmt.Errorf("first customer %d is negative", c.FirstCustomer)
	}
	_, err := ParseMix(string(c.Mix))
	return err
}

// NewCustomerID is the id of the k-th new customer (k from 1): k times an
// odd number, modulo 2^31, is a bijection of [0, 2^31), so no id repeats
// and they come in no useful order: each lands at a random place in the
// state machine's ordered index.
func NewCustomerID(k int) int32 { return int32((uint64(k) * 2654435761) % (1 << 31)) }
