package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"orderly/serve"
	"orderly/shard"
	"orderly/wire"
)

// maxOrderBody bounds POST /v1/orders' body: the three fields fit in
// a tenth of it.
const maxOrderBody = 1 << 10

// maxKeyLen bounds an Idempotency-Key (UUIDs are 36 bytes).
const maxKeyLen = 255

// order serves POST /v1/orders.
func (g *Gateway) order(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	var body orderRequest
	if status, err := readBody(w, r, maxOrderBody, &body); err != nil {
		writeJSON(w, status, apiError{Code: wire.CodeBadRequest.String(), Message: "order: " + err.Error(), Outcome: "not_applied"})
		return
	}
	o, err := body.order()
	if err != nil {
		badRequest(w, "order: %v", err)
		return
	}
	key, hasKey, err := idempotencyKey(r)
	if err != nil {
		badRequest(w, "order: %v", err)
		return
	}
	var li wire.LaptopInfo
	var ok bool
	if hasKey {
		o.ClientID, o.Seq = keyClient(certDigest(r), key), 1
		if li, ok = g.placeOrder(w, r, from, o); !ok {
			return
		}
		if !sameOrder(li, o) {
			writeJSON(w, http.StatusUnprocessableEntity, apiError{Code: codeIdempotencyReused, Outcome: "not_applied",
				Message: fmt.Sprintf("Idempotency-Key %q was used for another order (customer %d, number %d, %s) at index %d",
					key, li.CustomerID, li.OrderNumber, li.LaptopType, li.Index)})
			return
		}
	} else if li, ok = g.laneOrder(w, r, from, o); !ok {
		return
	}
	w.Header().Set("Location", "/v1/customers/"+strconv.Itoa(int(li.CustomerID)))
	writeJSON(w, http.StatusCreated, laptopOf(li))
}

// laneOrder places o in one of the gateway's sessions. The gateway sends
// each seq of a lane once; a sure refusal leaves the seq unused, so the
// lane's next order takes it again (the FSM starts a session only at seq
// 1). A session the cluster has forgotten (SessionExpired: this order
// was not applied) is replaced by a new lane, once.
func (g *Gateway) laneOrder(w http.ResponseWriter, r *http.Request, from serve.Caller, o wire.Order) (wire.LaptopInfo, bool) {
	var sh uint32
	if g.opt.Shards != nil {
		n, err := g.opt.Shards(r.Context())
		if err != nil {
			writeWireError(w, wire.Errorf(wire.CodeUnavailable, "order: %v", err), writeCall)
			return wire.LaptopInfo{}, false
		}
		sh = shard.Of(o.CustomerID, n)
	}
	l := g.lanes.take(sh)
	for attempt := 0; ; attempt++ {
		o.ClientID, o.Seq = l.id, l.seq+1
		resp, err := g.call(r, from, o)
		code, _ := wire.CodeOf(err)
		if code == wire.CodeSessionExpired && attempt == 0 {
			l = newLane()
			continue
		}
		if err == nil || code.Unknown() {
			l.seq++ // applied, or may be yet: never sent again
		}
		g.lanes.give(sh, l)
		li, ok := answerAs[wire.LaptopInfo](w, o, resp, err, writeCall)
		if ok && !sameOrder(li, o) {
			// The session answered another order's outcome: a seq was
			// sent twice, which the lanes never do. Say so; never 201.
			writeWireError(w, wire.Errorf(wire.CodeInternal, "order of customer %d answered for customer %d, number %d (index %d)",
				o.CustomerID, li.CustomerID, li.OrderNumber, li.Index), writeCall)
			return li, false
		}
		return li, ok
	}
}

func (g *Gateway) placeOrder(w http.ResponseWriter, r *http.Request, from serve.Caller, o wire.Order) (wire.LaptopInfo, bool) {
	resp, err := g.call(r, from, o)
	return answerAs[wire.LaptopInfo](w, o, resp, err, keyedWrite)
}

// sameOrder reports whether li answers o (and not another order of the
// same session).
func sameOrder(li wire.LaptopInfo, o wire.Order) bool {
	return li.CustomerID == o.CustomerID && li.OrderNumber == o.OrderNumber && li.LaptopType == o.LaptopType
}

func (b orderRequest) order() (wire.Order, error) {
	if b.Customer == nil || b.Number == nil {
		return wire.Order{}, fmt.Errorf("customer and number are required")
	}
	o := wire.Order{CustomerID: *b.Customer, OrderNumber: *b.Number}
	switch b.Type {
	case "regular":
		o.LaptopType = wire.Regular
	case "custom":
		o.LaptopType = wire.Custom
	default:
		return o, fmt.Errorf("type %q: want regular or custom", b.Type)
	}
	o.ClientID, o.Seq = 1, 1 // checked here for the other fields; set by the caller
	return o, o.Validate()
}

// idempotencyKey reads the Idempotency-Key header: a Structured Field
// string ("...", as the IETF httpapi draft writes it) or a bare token,
// of visible ASCII.
func idempotencyKey(r *http.Request) (string, bool, error) {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) == 0 {
		return "", false, nil
	}
	if len(vs) > 1 {
		return "", false, fmt.Errorf("%d Idempotency-Key headers, want one", len(vs))
	}
	k := vs[0]
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxKeyLen {
		return "", false, fmt.Errorf("Idempotency-Key of %d bytes: want 1 to %d", len(k), maxKeyLen)
	}
	if i := strings.IndexFunc(k, func(c rune) bool { return c < 0x21 || c > 0x7e || c == '"' || c == '\\' }); i >= 0 {
		return "", false, fmt.Errorf("Idempotency-Key: byte %d is not visible ASCII", i)
	}
	return k, true, nil
}

// keyClient is the client id of an Idempotency-Key's session: a digest of
// the client's certificate and the key, so a key is the client's own, the
// same on every node and balancer, and unlike any other client's id
// (2^-64 for a pair to collide).
func keyClient(cert []byte, key string) uint64 {
	h := sha256.New()
	h.Write([]byte("orderly idempotency key\x00"))
	h.Write(cert)
	h.Write([]byte{0})
	h.Write([]byte(key))
	if id := binary.BigEndian.Uint64(h.Sum(nil)); id != 0 {
		return id
	}
	return 1
}

// lanes are the gateway's own sessions for orders without a key: each
// carries one order at a time, so its seqs rise in the order they are
// sent, and there are as many as orders in flight at the peak, not one
// per order (the FSM caps its sessions).
type lanes struct {
	mu   sync.Mutex
	free map[uint32][]*lane // by shard: a lane is a session of one shard
}

type lane struct {
	id  uint64
	seq uint64 // the last seq sent that was, or may have been, applied
}

func newLane() *lane {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read does not fail (Go 1.24+)
	return &lane{id: binary.BigEndian.Uint64(b[:]) | 1}
}

// take gives a free lane of shard sh, or a new one with a random client
// id.
func (ls *lanes) take(sh uint32) *lane {
	ls.mu.Lock()
	if n := len(ls.free[sh]); n > 0 {
		l := ls.free[sh][n-1]
		ls.free[sh] = ls.free[sh][:n-1]
		ls.mu.Unlock()
		return l
	}
	ls.mu.Unlock()
	return newLane()
}

// give returns a lane whose order has its answer. Its next seq is above
// every seq it sent, so an order that may still commit late is refused
// then (StaleSeq), never applied beside a newer one.
func (ls *lanes) give(sh uint32, l *lane) {
	ls.mu.Lock()
	if ls.free == nil {
		ls.free = map[uint32][]*lane{}
	}
	ls.free[sh] = append(ls.free[sh], l)
	ls.mu.Unlock()
}
