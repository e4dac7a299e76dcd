package lb

import (
	"context"
	"errors"
	"fmt"

	"orderly/serve"
	"orderly/wire"
)

// handle answers one orderly-protocol request.
// The server has checked that the client's role allows it.
func (b *Balancer) handle(ctx context.Context, from serve.Caller, req wire.Message) wire.Message {
	b.requests.Add(1)
	if o, ok := req.(wire.Order); ok {
		return wire.Reply(b.placeOrder(ctx, orderlyClient(from), o))
	}
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	return wire.Reply(b.serve(ctx, orderlyClient(from), req))
}

// startOrder is the orderly port's Async (serve.Options.Async): an order
// is placed from the client connection's reader and answered from the
// leader connection's; anything else is left to a worker.
func (b *Balancer) startOrder(ctx context.Context, from serve.Caller, req wire.Message, answer func(wire.Message)) bool {
	o, ok := req.(wire.Order)
	if !ok {
		return false
	}
	b.requests.Add(1)
	b.order(ctx, orderlyClient(from), o, answer)
	return true
}

// ServeAPI answers a call of the HTTP API (package api) as the binary
// port answers its request.
func (b *Balancer) ServeAPI(ctx context.Context, from serve.Caller, req wire.Message) wire.Message {
	return b.handle(ctx, from, req)
}

// Watch serves a change feed for the HTTP API.
func (b *Balancer) Watch(ctx context.Context, from serve.Caller, w wire.Watch, send func(context.Context, wire.Message) error) wire.Message {
	return b.watch(ctx, from, w, send)
}

func (b *Balancer) serve(ctx context.Context, from client, req wire.Message) (wire.Message, error) {
	switch r := req.(type) {
	case wire.Get:
		if err := r.Validate(); err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "get: %v", err)
		}
		rec, err := b.get(ctx, from, r)
		if err != nil {
			return nil, err
		}
		return rec, nil
	case wire.Scan:
		if err := r.Validate(); err != nil {
			return nil, wire.Errorf(wire.CodeBadRequest, "scan: %v", err)
		}
		return b.forward(ctx, from, false, r)
	case wire.Status:
		return b.status(), nil
	case wire.Members, wire.Shards:
		return b.forward(ctx, from, false, r)
	case wire.Alarms:
		return b.forward(ctx, from, true, r)
	case wire.AddMember, wire.RemoveMember, wire.TransferLeader, wire.Backup:
		return b.forward(ctx, from, true, r)
	}
	return nil, wire.Errorf(wire.CodeBadRequest, "%s is not a request a balancer takes", req.Type())
}

// ordered checks a node's answer to an order and refreshes the cache
// from it.
func (b *Balancer) ordered(resp wire.Message, err error) (wire.LaptopInfo, error) {
	if err != nil {
		return wire.LaptopInfo{}, err
	}
	li, ok := resp.(wire.LaptopInfo)
	if !ok {
		return wire.LaptopInfo{}, wire.Errorf(wire.CodeInternal, "order answered with %s", resp.Type())
	}
	b.cache.wrote(li)
	return li, nil
}

// get answers from the cache when the level allows it, else from a node,
// and keeps what the node said.
func (b *Balancer) get(ctx context.Context, from client, g wire.Get) (wire.Record, error) {
	if rec, ok := b.cache.get(g.CustomerID, g.Consistency, g.MinIndex); ok {
		return rec, nil
	}
	if g.Consistency == wire.Linearizable {
		if rec, ok := b.linearizableFromCache(ctx, g); ok {
			return rec, nil
		}
	}
	resp, err := b.forward(ctx, from, false, g)
	if err != nil {
		return wire.Record{}, err
	}
	rec, ok := resp.(wire.Record)
	if !ok {
		return wire.Record{}, wire.Errorf(wire.CodeInternal, "get answered with %s", resp.Type())
	}
	b.cache.put(rec)
	return rec, nil
}

// status describes the balancer: its view of the cluster, and counters.
func (b *Balancer) status() wire.StatusInfo {
	st := wire.StatusInfo{ID: "orderlb", Role: "balancer"}
	healthy := uint64(0)
	var up []wire.Stat
	leader := b.pool.currentLeader()
	waiting := 0
	for _, be := range b.pool.list() {
		waiting += be.share.waiting()
		be.mu.Lock()
		ns, ok := be.status, be.healthy
		be.mu.Unlock()
		v := uint64(0)
		if ok {
			healthy, v = healthy+1, 1
		}
		up = append(up, wire.Stat{Name: "backend_up " + be.addr, Value: v})
		st.Members = append(st.Members, wire.Member{ID: ns.ID, ClientAddr: be.addr})
		if be == leader {
			st.LeaderID, st.LeaderAddr = ns.ID, be.addr
			st.Term, st.CommitIndex, st.AppliedIndex, st.LastIndex = ns.Term, ns.CommitIndex, ns.AppliedIndex, ns.LastIndex
		}
	}
	st.Stats = append([]wire.Stat{
		{Name: "backends_healthy", Value: healthy},
		{Name: "requests", Value: b.requests.Load()},
		{Name: "retries", Value: b.retries.Load()},
		{Name: "redirects", Value: b.redirects.Load()},
		{Name: "failures", Value: b.failures.Load()},
		{Name: "requests_in_flight", Value: uint64(max(b.inflight.Load(), 0))},
		{Name: "watchers", Value: uint64(max(b.watchers.Load(), 0))},
		{Name: "orders_waiting_turn", Value: uint64(waiting)},
		{Name: "orders_turn_expired", Value: b.turnsExpired.Load()},
	}, b.cache.stats()...)
	open, refused := b.server.Conns()
	st.Stats = append(st.Stats, wire.Stat{Name: "conns_open", Value: uint64(open)}, wire.Stat{Name: "conns_refused", Value: refused})
	st.Stats = append(st.Stats, b.cfg.Bounds.Stats()...)
	st.Stats = append(st.Stats, up...)
	return st
}

// Ready says whether the balancer should get traffic (/readyz): it knows
// a leader among its backends.
func (b *Balancer) Ready() error {
	if b.pool.currentLeader() == nil {
		return errors.New("no leader among the backends")
	}
	if b.pool.shards.Load() == 0 {
		return errors.New("the cluster's shard count is not known yet")
	}
	return nil
}

// Status is the balancer's status, as its clients see it.
func (b *Balancer) Status() wire.StatusInfo { return b.status() }

// MemberStatuses is each backend's last status as its prober saw it (the
// operator's page); one that does not answer has role "unreachable".
func (b *Balancer) MemberStatuses(context.Context) []wire.StatusInfo {
	var out []wire.StatusInfo
	for _, be := range b.pool.list() {
		be.mu.Lock()
		st, ok := be.status, be.healthy
		be.mu.Unlock()
		if !ok {
			st = wire.StatusInfo{ID: st.ID, Role: "unreachable"}
			if st.ID == "" {
				st.ID = be.addr
			}
		}
		out = append(out, st)
	}
	return out
}

// ShardMap asks a node for the cluster's shard map (the operator's page).
func (b *Balancer) ShardMap(ctx context.Context) (wire.ShardMap, error) {
	be := b.pool.reader()
	if be == nil {
		return wire.ShardMap{}, fmt.Errorf("no node to ask")
	}
	conn := be.usable()
	if conn == nil {
		return wire.ShardMap{}, fmt.Errorf("node %s: no connection", be.addr)
	}
	return wire.CallAs[wire.ShardMap](ctx, conn, wire.Shards{}, 0)
}

// ShardStatus asks node for its replica of shard (the operator's page).
func (b *Balancer) ShardStatus(ctx context.Context, node string, shard uint32) (wire.StatusInfo, error) {
	for _, be := range b.pool.list() {
		be.mu.Lock()
		id := be.status.ID
		be.mu.Unlock()
		if id != node {
			continue
		}
		conn := be.usable()
		if conn == nil {
			return wire.StatusInfo{}, fmt.Errorf("node %s: no connection", node)
		}
		return wire.CallAs[wire.StatusInfo](ctx, conn, wire.ShardStatus{Shard: shard}, 0)
	}
	return wire.StatusInfo{}, fmt.Errorf("node %s: not a backend", node)
}
