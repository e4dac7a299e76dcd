package api

import (
	"fmt"
	"net/http"
	"strconv"

	"orderly/serve"
	"orderly/wire"
)

// readLevel reads ?consistency= (default linearizable) and ?min_index=.
func readLevel(r *http.Request) (wire.Consistency, uint64, error) {
	q := r.URL.Query()
	c := wire.Linearizable
	if s := q.Get("consistency"); s != "" {
		var err error
		if c, err = wire.ParseConsistency(s); err != nil {
			return 0, 0, err
		}
	}
	var min uint64
	if s := q.Get("min_index"); s != "" {
		var err error
		if min, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("min_index %q: want an index >= 0", s)
		}
	}
	return c, min, nil
}

// customerID reads a customer id: 0 to 2^31-1.
func customerID(name, s string) (int32, error) {
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("%s %q: want a customer id from 0 to %d", name, s, int32(^uint32(0)>>1))
	}
	return int32(id), nil
}

// get serves GET /v1/customers/{id}.
func (g *Gateway) get(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	id, err := customerID("customer", r.PathValue("id"))
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	c, min, err := readLevel(r)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	rec, ok := doAs[wire.Record](g, w, r, from, wire.Get{CustomerID: id, Consistency: c, MinIndex: min})
	if !ok {
		return
	}
	w.Header().Set("Orderly-Read-Index", strconv.FormatUint(rec.ReadIndex, 10))
	if rec.LastOrder == wire.NoOrder {
		writeError(w, http.StatusNotFound, codeNotFound, "customer %d has no orders (as of index %d)", id, rec.ReadIndex)
		return
	}
	writeJSON(w, http.StatusOK, record{customer: customerOf(rec.CustomerRecord), ReadIndex: rec.ReadIndex})
}

// maxPage bounds GET /v1/customers' limit.
const maxPage = 1000

// scan serves GET /v1/customers.
func (g *Gateway) scan(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	q := r.URL.Query()
	s := wire.Scan{Limit: 100}
	var err error
	if v := q.Get("from"); v != "" {
		if s.From, err = customerID("from", v); err != nil {
			badRequest(w, "%v", err)
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n < 1 || n > maxPage {
			badRequest(w, "limit %q: want 1 to %d", v, maxPage)
			return
		}
		s.Limit = uint32(n)
	}
	if s.Consistency, s.MinIndex, err = readLevel(r); err != nil {
		badRequest(w, "%v", err)
		return
	}
	recs, ok := doAs[wire.Records](g, w, r, from, s)
	if !ok {
		return
	}
	p := page{Customers: make([]customer, 0, len(recs.Records)), ReadIndex: recs.ReadIndex}
	for _, rec := range recs.Records {
		p.Customers = append(p.Customers, customerOf(rec))
	}
	if recs.Next >= 0 {
		p.Next = &recs.Next
	}
	w.Header().Set("Orderly-Read-Index", strconv.FormatUint(recs.ReadIndex, 10))
	writeJSON(w, http.StatusOK, p)
}

// status serves GET /v1/status: the status of the process serving it.
func (g *Gateway) status(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	st, ok := doAs[wire.StatusInfo](g, w, r, from, wire.Status{})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, StatusOf(st))
}

// members serves GET /v1/members.
func (g *Gateway) shards(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	m, ok := doAs[wire.ShardMap](g, w, r, from, wire.Shards{})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Shard{"shards": ShardsOf(m)})
}

func (g *Gateway) members(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	ml, ok := doAs[wire.MemberList](g, w, r, from, wire.Members{})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Member{"members": MembersOf(ml.Members)})
}
