package wire

import "fmt"

// Watch asks for the change feed (any role): every order applied from
// index From on (0: from now), in index order, as a stream of Events
// frames with the Watch's request id until the connection closes or a
// Compacted ends it. Customer -1 is every customer. A connection that
// watches carries nothing else.
//
// In a sharded cluster index positions are a shard's own: a watch of one
// customer follows its shard's feed, and every customer is watched shard
// by shard, with PerShard set and Customer WatchAll: Shard's feed from
// From on, which any replica of the shard serves. A merger (the client's
// WatchShards, the HTTP API) keeps a position per shard.
type Watch struct {
	From     uint64
	Customer int32
	PerShard bool   // sent as a trailing shard id; absent: the node's one feed, or the customer's shard's
	Shard    uint32 // with PerShard: the shard watched
}

// WatchAll is Watch.Customer for every customer.
const WatchAll = -1

func (Watch) Type() Type { return TypeWatch }
func (w Watch) AppendTo(dst []byte) []byte {
	dst = appendI32(appendU64(dst, w.From), w.Customer)
	if w.PerShard {
		dst = appendU32(dst, w.Shard)
	}
	return dst
}

// Validate checks the fields a decoder cannot.
func (w Watch) Validate() error {
	if w.Customer < WatchAll {
		return fmt.Errorf("customer %d: want a customer id >= 0, or %d for all", w.Customer, WatchAll)
	}
	if w.PerShard && w.Customer != WatchAll {
		return fmt.Errorf("shard %d: a watch of one shard is of every customer in it (customer %d), not of customer %d", w.Shard, WatchAll, w.Customer)
	}
	return nil
}

// DecodeWatch decodes a Watch payload.
func DecodeWatch(b []byte) (Watch, error) {
	d := decoder{b: b}
	w := Watch{From: d.u64(), Customer: d.i32()}
	if d.err == nil && len(d.b) > 0 {
		w.PerShard, w.Shard = true, d.u32()
	}
	return w, d.finish("Watch")
}

// Event is one applied order: the customer's record after it, and who
// built the laptop.
type Event struct {
	Index       uint64 // the Raft entry that carried the order
	CustomerID  int32
	OrderNumber int32 // the record's last order now
	LaptopType  LaptopType
	EngineerID  int32
	ExpertID    int32
	OrderCount  uint64 // the customer's orders, this one included
}

// EventSize is an Event's encoded size.
const EventSize = 8 + 4 + 4 + 1 + 4 + 4 + 8

// Record is the customer's record after the event.
func (e Event) Record() CustomerRecord {
	return CustomerRecord{CustomerID: e.CustomerID, LastOrder: e.OrderNumber, OrderCount: e.OrderCount,
		LastLaptopType: int8(e.LaptopType), LastIndex: e.Index}
}

// MaxEvents bounds the events of one Events frame, well under the
// default frame size.
const MaxEvents = 4096

// Events is one frame of a Watch stream: every order (of the watched
// customer) applied in the entries after the previous frame's Through up
// to this Through. Entries are never split across frames, so a watcher
// that lost its connection resumes with Watch{From: Through + 1}. A frame
// with no events says only how far the node has applied.
type Events struct {
	Through uint64
	Events  []Event
}

func (Events) Type() Type { return TypeEvents }
func (e Events) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, e.Through)
	dst = appendU32(dst, uint32(len(e.Events)))
	for _, ev := range e.Events {
		dst = appendU64(dst, ev.Index)
		dst = appendI32(dst, ev.CustomerID)
		dst = appendI32(dst, ev.OrderNumber)
		dst = append(dst, uint8(ev.LaptopType))
		dst = appendI32(dst, ev.EngineerID)
		dst = appendI32(dst, ev.ExpertID)
		dst = appendU64(dst, ev.OrderCount)
	}
	return dst
}

// DecodeEvents decodes an Events payload.
func DecodeEvents(b []byte) (Events, error) {
	d := decoder{b: b}
	e := Events{Through: d.u64()}
	n := d.u32()
	switch {
	case d.err != nil:
	case n > MaxEvents:
		d.err = fmt.Errorf("wire: %d events in one frame, at most %d", n, MaxEvents)
	case uint64(len(d.b)) < uint64(n)*EventSize:
		d.err = ErrShortPayload
	case n > 0:
		e.Events = make([]Event, n)
		for i := range e.Events {
			e.Events[i] = Event{Index: d.u64(), CustomerID: d.i32(), OrderNumber: d.i32(),
				LaptopType: LaptopType(d.u8()), EngineerID: d.i32(), ExpertID: d.i32(), OrderCount: d.u64()}
		}
	}
	return e, d.finish("Events")
}

// Compacted ends a Watch stream: the node no longer holds the orders
// from the index asked for (or the watcher fell that far behind: too
// slow to keep up). Oldest is the first index it can still serve; a
// watcher resumes from there after re-reading the state it missed.
type Compacted struct {
	Oldest  uint64
	Message string
}

func (Compacted) Type() Type { return TypeCompacted }
func (c Compacted) AppendTo(dst []byte) []byte {
	return appendStr(appendU64(dst, c.Oldest), c.Message)
}

func (c Compacted) Error() string {
	return fmt.Sprintf("Compacted: %s (oldest index held: %d)", c.Message, c.Oldest)
}

// DecodeCompacted decodes a Compacted payload.
func DecodeCompacted(b []byte) (Compacted, error) {
	d := decoder{b: b}
	c := Compacted{Oldest: d.u64(), Message: d.str()}
	return c, d.finish("Compacted")
}
