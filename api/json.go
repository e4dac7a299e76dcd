package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"orderly/wire"
)

// orderRequest is POST /v1/orders' body.
type orderRequest struct {
	Customer *int32 `json:"customer"`
	Number   *int32 `json:"number"`
	Type     string `json:"type"`
}

// laptop is an applied order: who built the laptop, and where it is in
// the log.
type laptop struct {
	Customer   int32  `json:"customer"`
	Number     int32  `json:"number"`
	Type       string `json:"type"`
	Engineer   int32  `json:"engineer"`
	Expert     int32  `json:"expert"` // -1 for a regular order
	Index      uint64 `json:"index"`
	OrderCount uint64 `json:"order_count"`
	// Shard, in a watch of every customer of a sharded cluster: the
	// shard whose feed (and index) the order is of.
	Shard *uint32 `json:"shard,omitempty"`
}

func laptopOf(li wire.LaptopInfo) laptop {
	return laptop{Customer: li.CustomerID, Number: li.OrderNumber, Type: li.LaptopType.String(),
		Engineer: li.EngineerID, Expert: li.ExpertID, Index: li.Index, OrderCount: li.OrderCount}
}

// customer is one customer's record.
type customer struct {
	Customer   int32  `json:"customer"`
	LastOrder  int32  `json:"last_order"`
	OrderCount uint64 `json:"order_count"`
	LastType   string `json:"last_type"`
	LastIndex  uint64 `json:"last_index"`
}

func customerOf(r wire.CustomerRecord) customer {
	return customer{Customer: r.CustomerID, LastOrder: r.LastOrder, OrderCount: r.OrderCount,
		LastType: wire.LaptopType(r.LastLaptopType).String(), LastIndex: r.LastIndex}
}

// record is GET /v1/customers/{id}'s answer.
type record struct {
	customer
	ReadIndex uint64 `json:"read_index"`
}

// page is GET /v1/customers' answer; Next is absent at the end.
type page struct {
	Customers []customer `json:"customers"`
	Next      *int32     `json:"next,omitempty"`
	ReadIndex uint64     `json:"read_index"`
}

// Member is a member of the Raft group as JSON (the API's and orderctl's).
type Member struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	ClientAddr string `json:"client_addr"` // empty until the node has published it
	Voter      bool   `json:"voter"`
}

// MembersOf is ms as JSON: never null.
func MembersOf(ms []wire.Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{ID: m.ID, RaftAddr: m.RaftAddr, ClientAddr: m.ClientAddr, Voter: m.Voter})
	}
	return out
}

// Shard is one shard of the map as JSON (the API's and orderctl shards
// list's): its customers as hash slots "lo-hi" (package shard).
type Shard struct {
	ID        uint32         `json:"id"`
	Customers string         `json:"customers"`
	Leader    string         `json:"leader"`
	Epoch     uint64         `json:"epoch"`
	Replicas  []ShardReplica `json:"replicas"`
}

// ShardReplica is one replica of a shard as JSON.
type ShardReplica struct {
	ID    string `json:"id"`
	Voter bool   `json:"voter"`
}

// ShardsOf is m as JSON: never null.
func ShardsOf(m wire.ShardMap) []Shard {
	out := make([]Shard, 0, len(m.Shards))
	for _, s := range m.Shards {
		j := Shard{ID: s.ID, Customers: fmt.Sprintf("slots %d-%d", s.SlotLo, s.SlotHi-1), Leader: s.Leader,
			Epoch: s.Epoch, Replicas: []ShardReplica{}}
		for _, r := range s.Replicas {
			j.Replicas = append(j.Replicas, ShardReplica{ID: r.ID, Voter: r.Voter})
		}
		out = append(out, j)
	}
	return out
}

// Status is a node's or balancer's status as JSON (the API's and
// orderctl's).
type Status struct {
	ID           string            `json:"id"`
	Role         string            `json:"role"`
	LeaderID     string            `json:"leader_id"`
	LeaderAddr   string            `json:"leader_addr"`
	Term         uint64            `json:"term"`
	CommitIndex  uint64            `json:"commit_index"`
	AppliedIndex uint64            `json:"applied_index"`
	LastIndex    uint64            `json:"last_index"`
	Members      []Member          `json:"members"`
	Stats        map[string]uint64 `json:"stats"`
}

// StatusOf is s as JSON.
func StatusOf(s wire.StatusInfo) Status {
	st := Status{ID: s.ID, Role: s.Role, LeaderID: s.LeaderID, LeaderAddr: s.LeaderAddr, Term: s.Term,
		CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, LastIndex: s.LastIndex,
		Members: MembersOf(s.Members), Stats: make(map[string]uint64, len(s.Stats))}
	for _, x := range s.Stats {
		st.Stats[x.Name] = x.Value
	}
	return st
}

// addMemberRequest is POST /v1/members' body.
type addMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    *bool  `json:"voter"`
}

// transferRequest is POST /v1/leader/transfer's body; an empty ID lets
// the leader choose.
type transferRequest struct {
	ID string `json:"id"`
}

// event is one applied order on the change feed.
type event struct {
	Index      uint64 `json:"index"`
	Customer   int32  `json:"customer"`
	Number     int32  `json:"number"`
	Type       string `json:"type"`
	Engineer   int32  `json:"engineer"`
	Expert     int32  `json:"expert"`
	OrderCount uint64 `json:"order_count"`
	// Shard, in a watch of every customer of a sharded cluster: the
	// shard whose feed (and index) the order is of.
	Shard *uint32 `json:"shard,omitempty"`
}

func eventOf(e wire.Event) event {
	return event{Index: e.Index, Customer: e.CustomerID, Number: e.OrderNumber, Type: e.LaptopType.String(),
		Engineer: e.EngineerID, Expert: e.ExpertID, OrderCount: e.OrderCount}
}

// readBody decodes one JSON object of at most limit bytes into v:
// unknown fields, trailing data, a wrong content type or a bigger body
// are refused with the status to answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, v any) (int, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: want application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", limit)
		}
		return http.StatusBadRequest, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return http.StatusBadRequest, fmt.Errorf("body: data after the JSON object")
	}
	return 0, nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
