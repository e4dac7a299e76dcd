package raftnode

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"orderly/faults"
	"orderly/fsm"
	"orderly/group"
	"orderly/serve"
	"orderly/wire"
)

// handle answers one decoded request within the request timeout, which
// the server's ctx carries (serve.Options.RequestTimeout). It never
// panics on client input: a bad request is an Error answer.
// The server has checked that the caller's role allows it.
func (n *Node) handle(ctx context.Context, from serve.Caller, req wire.Message) wire.Message {
	if _, ok := ctx.Deadline(); !ok { // the server's contexts have one
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.RequestTimeout)
		defer cancel()
	}
	if err := n.admit(from, req); err != nil {
		return wireAnswer(err)
	}
	var resp wire.Message
	var err error
	switch r := req.(type) {
	case wire.Order:
		if faults.RefuseOrder() {
			err = refuse(ErrUnavailable, "test fault %s", faults.RefuseWrites)
			break
		}
		resp, err = n.placeOrder(ctx, from.ConnID, r)
	case wire.Get:
		resp, err = n.get(ctx, r)
	case wire.Scan:
		resp, err = n.scan(ctx, r)
	case wire.Status:
		resp = n.Status()
	case wire.Members:
		resp = wire.MemberList{Members: n.members()}
	case wire.ReadIndex:
		resp, err = n.readIndexForPeer(ctx, 0)
	case wire.ShardReadIndex:
		resp, err = n.readIndexForPeer(ctx, r.Shard)
	case wire.Shards:
		resp = n.shardMap()
	case wire.ShardScan:
		resp, err = n.shardScan(ctx, r)
	case wire.ShardStatus:
		resp, err = n.shardStatus(r.Shard)
	case wire.ShardMember:
		resp, err = n.shardMember(ctx, r)
	case wire.PublishShard:
		if err = n.answerPublishShard(from.Name, r); err == nil {
			resp = wire.OK{}
		}
	case wire.Alarms:
		resp = wire.AlarmList{Alarms: n.alarms.active()}
	case wire.ReportAlarms:
		resp, err = n.answerReport(from, r)
	case wire.Backup:
		resp, err = n.backup(r)
	case wire.AddMember, wire.RemoveMember, wire.TransferLeader, wire.Publish:
		resp, err = n.admin(from, r)
	default:
		err = refuse(ErrInvalid, "%s is not a request", req.Type())
	}
	if err != nil {
		return wireAnswer(err)
	}
	return resp
}

// admit refuses a request while Open is still starting the rest (the
// ports take requests before it has finished), and what strangerMay
// refuses.
func (n *Node) admit(from serve.Caller, req wire.Message) error {
	select {
	case <-n.opened:
	default:
		return refuse(ErrUnavailable, "node %s is starting", n.cfg.ID)
	}
	return n.strangerMay(from, req)
}

// strangerMay refuses what a node certificate that is not (or no longer)
// a member may not ask, on any port: a CA's signature is not
// membership. It may ask what a node needs to join (Status: the
// bootstrap probe; Members: vouching), and nothing in another's name.
func (n *Node) strangerMay(from serve.Caller, req wire.Message) error {
	if from.Role != wire.RoleNode && from.Forwarder != wire.RoleNode {
		return nil
	}
	if from.Forwarder == wire.RoleNode || (req.Type() != wire.TypeStatus && req.Type() != wire.TypeMembers) {
		if !n.isMember(from.Name) {
			return refuse(ErrDenied, "node %q is not a member: it may ask for status and members only", from.Name)
		}
	}
	return nil
}

// placeOrder proposes one order. Only a refusal before raft.Apply is a
// sure failure; after it, a lost leadership or a timeout leaves the order's
// fate unknown and the client must retry with the same (client_id, seq).
func (n *Node) placeOrder(ctx context.Context, engineer int32, o wire.Order) (wire.Message, error) {
	if err := o.Validate(); err != nil {
		return nil, refuse(ErrInvalid, "order: %v", err)
	}
	r, id := n.replicaOf(o.CustomerID)
	if r == nil {
		return nil, n.wrongShard(id)
	}
	if r.raft().State() != raft.Leader {
		return nil, n.notLeaderOf(r)
	}
	if err := n.alarms.refuseOrders(); err != nil {
		return nil, err
	}
	expert := int32(-1)
	if o.LaptopType == wire.Custom {
		id, err := n.experts.acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer n.experts.release(id)
		expert = id
	}
	res, err := r.group.Propose(ctx, fsm.PlaceOrder{
		CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, LaptopType: uint8(o.LaptopType),
		EngineerID: engineer, ExpertID: expert, ClientID: o.ClientID, Seq: o.Seq,
		LeaderTime: time.Now().UnixNano(),
	})
	if err != nil {
		return nil, n.groupError(r, err)
	}
	switch res.Refused {
	case fsm.RefusedStaleSeq:
		return nil, refuse(ErrStaleSeq, "%v", res.Err())
	case fsm.RefusedInvalid:
		return nil, refuse(ErrInvalid, "%v", res.Err())
	case fsm.RefusedTooManySessions:
		_, l := r.group.FSM().Limits()
		return nil, refuse(ErrOverloaded, "%v (the cluster keeps %d, and evicts only sessions idle for %v)", res.Err(), l.MaxSessions, l.EvictIdle)
	case fsm.RefusedSessionExpired:
		return nil, refuse(ErrSessionExpired, "client %d has no session (expired or evicted at the cap) and seq %d is not its first: start a new session", o.ClientID, o.Seq)
	}
	a := res.Order
	return wire.LaptopInfo{CustomerID: a.CustomerID, OrderNumber: a.OrderNumber,
		LaptopType: wire.LaptopType(a.LaptopType), EngineerID: a.EngineerID, ExpertID: a.ExpertID,
		Index: a.Index, OrderCount: a.OrderCount}, nil
}

// levels are the group's read levels of the protocol's consistency levels.
var levels = map[wire.Consistency]group.Level{
	wire.Stale: group.Stale, wire.Session: group.Session, wire.Linearizable: group.Linearizable}

// readAt waits until r's replica may serve a read at level c, and returns
// once its FSM has applied everything the level requires.
func (n *Node) readAt(ctx context.Context, r *replica, c wire.Consistency, minIndex uint64) error {
	level, ok := levels[c]
	if !ok {
		return refuse(ErrInvalid, "unknown consistency level %d", c)
	}
	return n.groupError(r, r.group.Read(ctx, level, minIndex))
}

func (n *Node) get(ctx context.Context, g wire.Get) (wire.Message, error) {
	if err := g.Validate(); err != nil {
		return nil, refuse(ErrInvalid, "get: %v", err)
	}
	r, id := n.replicaOf(g.CustomerID)
	if r == nil {
		return nil, n.wrongShard(id)
	}
	if err := n.readAt(ctx, r, g.Consistency, g.MinIndex); err != nil {
		return nil, err
	}
	rec, applied := r.group.FSM().Get(g.CustomerID)
	return wire.Record{CustomerRecord: toWire(rec), ReadIndex: applied}, nil
}

func (n *Node) scan(ctx context.Context, s wire.Scan) (wire.Message, error) {
	if err := s.Validate(); err != nil {
		return nil, refuse(ErrInvalid, "scan: %v", err)
	}
	if n.count > 1 {
		return n.scanShards(ctx, s)
	}
	r := n.replicas()[0]
	if err := n.readAt(ctx, r, s.Consistency, s.MinIndex); err != nil {
		return nil, err
	}
	recs, next, applied := r.group.FSM().Scan(s.From, int(s.Limit))
	out := wire.Records{ReadIndex: applied, Next: next, Records: make([]wire.CustomerRecord, len(recs))}
	for i, r := range recs {
		out.Records[i] = toWire(r)
	}
	return out, nil
}

// scanShards is a scan of a sharded cluster: a page of every shard's
// customers from s.From, merged in customer order; a shard this node
// holds no replica of is read by its leader (ShardScan on a peer
// stream). Session consistency is read as linearizable: s.MinIndex is an
// index of one shard, and the stronger level keeps its promise in all of
// them. Records.ReadIndex is 0 (no one index covers the page); each
// record's LastIndex is its shard's.
func (n *Node) scanShards(ctx context.Context, s wire.Scan) (wire.Message, error) {
	if s.Consistency == wire.Session {
		s.Consistency, s.MinIndex = wire.Linearizable, 0
	}
	var merged []wire.CustomerRecord
	next := int32(-1)
	for id := range n.count {
		page, err := n.scanShard(ctx, id, s)
		if err != nil {
			return nil, err
		}
		merged = append(merged, page.Records...)
		if more := page.Next; more >= 0 && (next < 0 || more < next) {
			next = more
		}
	}
	slices.SortFunc(merged, func(a, b wire.CustomerRecord) int { return cmp.Compare(a.CustomerID, b.CustomerID) })
	if len(merged) > int(s.Limit) {
		if cut := merged[s.Limit].CustomerID; next < 0 || cut < next {
			next = cut
		}
	}
	// Past next a shard may hold customers this page has not read: the
	// page ends before it, and the next page starts there.
	out := wire.Records{Next: next, Records: []wire.CustomerRecord{}}
	for _, rec := range merged {
		if next >= 0 && rec.CustomerID >= next {
			break
		}
		out.Records = append(out.Records, rec)
	}
	return out, nil
}

// scanShard is a page of shard id: this node's replica's, or its
// leader's.
func (n *Node) scanShard(ctx context.Context, id uint32, s wire.Scan) (wire.Records, error) {
	if n.replicas()[id] != nil {
		resp, err := n.shardScan(ctx, wire.ShardScan{Shard: id, Scan: s})
		if err != nil {
			return wire.Records{}, err
		}
		return resp.(wire.Records), nil
	}
	c, leader, err := n.shardLeaderPeer(ctx, id)
	if err != nil {
		return wire.Records{}, err
	}
	page, err := wire.CallAs[wire.Records](ctx, c, wire.ShardScan{Shard: id, Scan: s}, 0)
	if _, ok := wire.CodeOf(err); err != nil && !ok {
		return wire.Records{}, refuse(ErrUnavailable, "scan shard %d on its leader %s: %v", id, leader, err)
	}
	return page, err
}

// shardScan answers ShardScan: a page of one shard this node holds.
func (n *Node) shardScan(ctx context.Context, s wire.ShardScan) (wire.Message, error) {
	if err := s.Scan.Validate(); err != nil {
		return nil, refuse(ErrInvalid, "scan: %v", err)
	}
	r, err := n.replicaByID(s.Shard)
	if err != nil {
		return nil, err
	}
	if err := n.readAt(ctx, r, s.Scan.Consistency, s.Scan.MinIndex); err != nil {
		return nil, err
	}
	recs, next, applied := r.group.FSM().Scan(s.Scan.From, int(s.Scan.Limit))
	out := wire.Records{ReadIndex: applied, Next: next, Records: make([]wire.CustomerRecord, len(recs))}
	for i, rec := range recs {
		out.Records[i] = toWire(rec)
	}
	return out, nil
}

func toWire(r fsm.Record) wire.CustomerRecord {
	return wire.CustomerRecord{CustomerID: r.CustomerID, LastOrder: r.LastOrder, OrderCount: r.OrderCount,
		LastLaptopType: r.LastLaptopType, LastIndex: r.LastIndex}
}

// readIndexForPeer answers a follower's ReadIndex. It never forwards: a
// node that is not the leader says so, and the follower asks again.
func (n *Node) readIndexForPeer(ctx context.Context, shard uint32) (wire.Message, error) {
	r, err := n.replicaByID(shard)
	if err != nil {
		return nil, err
	}
	idx, err := r.group.ReadIndex(ctx)
	if err != nil {
		return nil, n.groupError(r, err)
	}
	return wire.ReadIndexReply{Index: idx}, nil
}
