// Package client is an orderly cluster client: it holds connections to a
// set of nodes (or balancers), follows the leader on NotLeader answers, and
// retries a write whose outcome is unknown with the same (client_id, seq),
// so that a retried order is applied once.
//
// Writes belong to a Session: a client id and its own numbering, with one
// write in flight at a time (the session contract of the fsm: a retry of
// anything but the last seq is refused). In a sharded cluster each shard
// keeps its own sessions, so a Session numbers its writes per shard
// (package shard says which shard holds a customer; the client asks the
// cluster for its shard count once) and follows each shard's leader. Client.Order uses the client's
// default session; NewSession gives more writers the same connections,
// which pipelines their requests. Reads may be concurrent.
//
// # Outcomes of a write
//
// A write ends in one of three ways, and only the first two are sure:
//
//   - answered (nil error): applied once, at the index in the answer;
//   - refused: an error whose wire.Code says the node turned this attempt
//     away before raft.Apply (NotLeader, Unavailable, Overloaded,
//     BadRequest, PermissionDenied, StaleSeq, NoSpace), and no earlier
//     attempt of the same seq may have been applied: surely not applied;
//   - unknown (errors.Is(err, ErrUnknownOutcome)): some attempt was lost
//     (no answer, a Timeout, Internal or SessionExpired), so the write may
//     have been applied, now or later.
//
// A refusal is sure only for the attempt that received it. Once any
// attempt of a seq has had an unknown outcome, the Session remembers: every
// later error for that seq, from Order's own retries, from RetryLast, after
// SessionExpired or on a new connection, is ErrUnknownOutcome, until an
// answer for that seq arrives (the first one, if it was applied, or its
// application now). A caller who is told "unknown" settles it with
// RetryLast, never by placing the order again under a new seq.
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"orderly/shard"
	"orderly/wire"
)

// Options configure a Client.
type Options struct {
	// Addrs are node or balancer client addresses; any of them may answer.
	Addrs []string
	// RetryTimeout bounds one call with all its retries; default 10s.
	RetryTimeout time.Duration
	// DialTimeout bounds a call while no address has answered at all
	// (refused, or no orderly handshake): such a call gives up with
	// ErrUnreachable instead of retrying for RetryTimeout. Default 2s.
	DialTimeout time.Duration
	// ClientID identifies this client's writes; 0 picks a random one.
	ClientID uint64
	// MaxFrame limits response frames; 0 is wire.DefaultMaxFrame.
	MaxFrame uint32
	// TLS gives the configuration of a mutual TLS connection to a server
	// (pki.Source.ClientConfig); nil dials plaintext (--insecure clusters).
	TLS func(serverName string) *tls.Config
}

// Stats counts what a client went through to get its answers.
type Stats struct {
	Retries   atomic.Uint64 // attempts after the first, for any reason
	Redirects atomic.Uint64 // NotLeader answers followed
}

// Client talks to an orderly cluster. Methods are safe for concurrent use,
// but Order calls are serialised (see the package comment).
type Client struct {
	opt   Options
	Stats Stats

	def *Session
	// seen is the highest index seen per shard, for session reads.
	seen [shard.MaxShards]atomic.Uint64
	// shards is the cluster's shard count, 0 until asked (shards.go).
	shards   atomic.Uint32
	shardsMu sync.Mutex // one Shards request at a time

	mu    sync.Mutex
	conns map[string]*wire.Conn
	// dials in progress, by address: calls that need the same address
	// wait for one dial rather than each making its own TLS handshake.
	dials   map[string]*dial
	leaders map[uint32]string // last known leader address, by shard
	next    int               // rotation over Addrs
	closed  bool              // a dial that ends after Close closes its connection
}

// New returns a Client; it dials lazily.
func New(opt Options) (*Client, error) {
	if len(opt.Addrs) == 0 {
		return nil, errors.New("client: no addresses")
	}
	if opt.RetryTimeout <= 0 {
		opt.RetryTimeout = 10 * time.Second
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 2 * time.Second
	}
	if opt.ClientID == 0 {
		id, err := randomID()
		if err != nil {
			return nil, err
		}
		opt.ClientID = id
	}
	c := &Client{opt: opt, conns: make(map[string]*wire.Conn), dials: make(map[string]*dial), leaders: map[uint32]string{}}
	c.def = &Session{c: c, id: opt.ClientID}
	return c, nil
}

func randomID() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("client: random client id: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]) | 1, nil
}

// ID is the client id the default session's writes carry.
func (c *Client) ID() uint64 { return c.opt.ClientID }

// Session is one writer: a client id and its sequence numbers.
type Session struct {
	c       *Client
	id      uint64
	writeMu sync.Mutex        // one write in flight: seq order is the session's order
	seqs    map[uint32]uint64 // the last seq, by shard
	last    wire.Order        // the last write sent, for RetryLast
	shard   uint32            // last's
	// unsure: an attempt of last may have been applied and no answer for
	// it has come; until one does, every error for it is unknown.
	unsure bool
}

// NewSession returns a writer with a fresh random client id that shares
// this Client's connections.
func (c *Client) NewSession() (*Session, error) {
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	return &Session{c: c, id: id}, nil
}

// SeenIndex is the highest Raft index this client has seen in any shard
// (of a single-shard cluster: the index).
func (c *Client) SeenIndex() uint64 {
	var top uint64
	for i := range c.seen {
		top = max(top, c.seen[i].Load())
	}
	return top
}

func (c *Client) observe(shard uint32, idx uint64) {
	seen := &c.seen[shard]
	for {
		old := seen.Load()
		if idx <= old || seen.CompareAndSwap(old, idx) {
			return
		}
	}
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	conns := c.conns
	c.conns = map[string]*wire.Conn{}
	c.closed = true
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
	return nil
}

// Order places an order and waits for it to be applied. A retry after an
// unknown outcome reuses the same seq. If the call still fails with an
// unknown outcome, the error wraps ErrUnknownOutcome.
func (c *Client) Order(ctx context.Context, customer, number int32, typ wire.LaptopType) (wire.LaptopInfo, error) {
	return c.def.Order(ctx, customer, number, typ)
}

// Order places an order in this session; see Client.Order.
func (s *Session) Order(ctx context.Context, customer, number int32, typ wire.LaptopType) (wire.LaptopInfo, error) {
	sh, err := s.c.shardOf(ctx, customer)
	if err != nil {
		return wire.LaptopInfo{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.seqs == nil {
		s.seqs = map[uint32]uint64{}
	}
	s.seqs[sh]++
	s.shard = sh
	s.last = wire.Order{CustomerID: customer, OrderNumber: number, LaptopType: typ, ClientID: s.id, Seq: s.seqs[sh]}
	s.unsure = false
	li, err := s.send(ctx)
	if code, ok := wire.CodeOf(err); !ok || code != wire.CodeSessionExpired || errors.Is(err, ErrUnknownOutcome) {
		return li, err
	}
	// The cluster forgot this session (idle past its TTL, or evicted at
	// the cluster's cap) and no attempt of this write had an unknown
	// outcome, so it was not applied: it is sent again as a new session's
	// first write.
	if err := s.renew(); err != nil {
		return li, err
	}
	s.seqs[sh] = 1
	s.last.ClientID, s.last.Seq = s.id, 1
	return s.send(ctx)
}

// renew gives the session a new client id; its writes start again at 1
// in every shard.
func (s *Session) renew() error {
	id, err := randomID()
	if err != nil {
		return err
	}
	s.id, s.seqs = id, map[uint32]uint64{}
	return nil
}

// RetryLast sends the session's last order again with the same seq: the
// way to settle a write that failed with ErrUnknownOutcome. The cluster
// applies it at most once; if it was applied, the answer is the first
// one's (same index). While no answer has come, an error is
// ErrUnknownOutcome however this resend was refused (see the package
// comment).
func (s *Session) RetryLast(ctx context.Context) (wire.LaptopInfo, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.last.Seq == 0 {
		return wire.LaptopInfo{}, errors.New("client: no write to retry")
	}
	return s.send(ctx)
}

// send sends the session's last write and keeps what its outcome says
// about that write's fate.
func (s *Session) send(ctx context.Context) (wire.LaptopInfo, error) {
	li, err := doAs[wire.LaptopInfo](ctx, s.c, s.c.toLeaderOf(s.shard), s.last)
	switch {
	case err == nil:
		s.unsure = false
		s.c.observe(s.shard, li.Index)
	case errors.Is(err, ErrUnknownOutcome):
		s.unsure = true
	case s.unsure:
		err = fmt.Errorf("%w: an earlier attempt of seq %d may have been applied; this one: %w", ErrUnknownOutcome, s.last.Seq, err)
	}
	return li, err
}

// Get reads a customer's record at the given consistency. Session reads
// send the highest index this client has seen.
func (c *Client) Get(ctx context.Context, customer int32, cons wire.Consistency) (wire.Record, error) {
	sh, err := c.shardOf(ctx, customer)
	if err != nil {
		return wire.Record{}, err
	}
	g := wire.Get{CustomerID: customer, Consistency: cons, MinIndex: c.seen[sh].Load()}
	r, err := doAs[wire.Record](ctx, c, anyNode, g)
	if err == nil {
		c.observe(sh, r.ReadIndex)
	}
	return r, err
}

// Scan reads one page of records. In a sharded cluster the page spans
// every shard and a session scan is served linearizable (raftnode).
func (c *Client) Scan(ctx context.Context, from int32, limit uint32, cons wire.Consistency) (wire.Records, error) {
	s := wire.Scan{From: from, Limit: limit, Consistency: cons, MinIndex: c.seen[0].Load()}
	r, err := doAs[wire.Records](ctx, c, anyNode, s)
	if err == nil && r.ReadIndex != 0 { // 0: a sharded page, no one index
		c.observe(0, r.ReadIndex)
	}
	return r, err
}

// Status asks the first node that answers.
func (c *Client) Status(ctx context.Context) (wire.StatusInfo, error) {
	return doAs[wire.StatusInfo](ctx, c, anyNode, wire.Status{})
}

// StatusOf asks one address, without retries.
func (c *Client) StatusOf(ctx context.Context, addr string) (wire.StatusInfo, error) {
	conn, err := c.conn(ctx, addr)
	if err != nil {
		return wire.StatusInfo{}, err
	}
	return conn.Status(ctx)
}

// Members lists the cluster's members.
func (c *Client) Members(ctx context.Context) ([]wire.Member, error) {
	ml, err := doAs[wire.MemberList](ctx, c, anyNode, wire.Members{})
	return ml.Members, err
}

// Alarms lists the cluster's active alarms, as the leader knows them.
func (c *Client) Alarms(ctx context.Context) ([]wire.Alarm, error) {
	l, err := doAs[wire.AlarmList](ctx, c, metaLeader, wire.Alarms{})
	return l.Alarms, err
}

// Backup asks the leader for one piece of a backup (wire.Backup says how
// the pieces are read).
func (c *Client) Backup(ctx context.Context, req wire.Backup) (wire.BackupChunk, error) {
	to := metaLeader
	if req.PerShard {
		to = c.toLeaderOf(req.Shard)
	}
	return doAs[wire.BackupChunk](ctx, c, to, req)
}

// Admin sends a leader-only admin request (AddMember, RemoveMember,
// TransferLeader), following the leader.
func (c *Client) Admin(ctx context.Context, req wire.Message) error {
	_, err := doAs[wire.OK](ctx, c, metaLeader, req)
	return err
}
