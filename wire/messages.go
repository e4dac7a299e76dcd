package wire

import "fmt"

// Type identifies a message. Requests and their responses have their own
// types so that a decoder never has to guess.
type Type uint8

// Message types. Values are part of the protocol: never renumber.
const (
	TypeOrder          Type = 1  // Order -> LaptopInfo
	TypeLaptopInfo     Type = 2  //
	TypeGet            Type = 3  // Get -> Record
	TypeRecord         Type = 4  //
	TypeScan           Type = 5  // Scan -> Records
	TypeRecords        Type = 6  //
	TypeStatus         Type = 7  // Status -> StatusInfo
	TypeStatusInfo     Type = 8  //
	TypeReadIndex      Type = 9  // ReadIndex -> ReadIndexResult (node to node)
	TypeReadIndexReply Type = 10 //
	TypeMembers        Type = 11 // Members -> MemberList
	TypeMemberList     Type = 12 //
	TypeAddMember      Type = 13 // AddMember -> OK
	TypeRemoveMember   Type = 14 // RemoveMember -> OK
	TypeTransferLeader Type = 15 // TransferLeader -> OK
	TypeOK             Type = 16 //
	TypePublish        Type = 17 // Publish -> OK (node to leader)
	TypeAsRole         Type = 18 // AsRole{role, request} -> the request's answer (balancer to node)
	TypeAlarms         Type = 19 // Alarms -> AlarmList
	TypeAlarmList      Type = 20 //
	TypeReportAlarms   Type = 21 // ReportAlarms -> AlarmList (node to leader)
	TypeBackup         Type = 22 // Backup -> BackupChunk
	TypeBackupChunk    Type = 23 //
	TypeWatch          Type = 24 // Watch -> a stream of Events, ended by Compacted or an Error
	TypeEvents         Type = 25 //
	TypeCompacted      Type = 26 //
	TypeShardReadIndex Type = 27 // ShardReadIndex -> ReadIndexReply (node to node)
	TypeShards         Type = 28 // Shards -> ShardMap
	TypeShardMap       Type = 29 //
	TypePublishShard   Type = 30 // PublishShard -> OK (node to the meta group's leader)
	TypeShardStatus    Type = 31 // ShardStatus -> StatusInfo
	TypeShardMember    Type = 32 // ShardMember -> OK (admin, to the shard's leader)
	TypeShardScan      Type = 33 // ShardScan -> Records (node to node)
	TypeError          Type = 255
)

var typeNames = map[Type]string{
	TypeOrder: "Order", TypeLaptopInfo: "LaptopInfo", TypeGet: "Get",
	TypeRecord: "Record", TypeScan: "Scan", TypeRecords: "Records",
	TypeStatus: "Status", TypeStatusInfo: "StatusInfo", TypeReadIndex: "ReadIndex",
	TypeReadIndexReply: "ReadIndexReply", TypeMembers: "Members",
	TypeMemberList: "MemberList", TypeAddMember: "AddMember",
	TypeRemoveMember: "RemoveMember", TypeTransferLeader: "TransferLeader",
	TypeOK: "OK", TypePublish: "Publish", TypeError: "Error", TypeAsRole: "AsRole",
	TypeAlarms: "Alarms", TypeAlarmList: "AlarmList", TypeReportAlarms: "ReportAlarms",
	TypeBackup: "Backup", TypeBackupChunk: "BackupChunk", TypeWatch: "Watch", TypeEvents: "Events",
	TypeCompacted: "Compacted", TypeShardReadIndex: "ShardReadIndex", TypeShards: "Shards", TypeShardMap: "ShardMap", TypePublishShard: "PublishShard",
	TypeShardStatus: "ShardStatus", TypeShardMember: "ShardMember", TypeShardScan: "ShardScan",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Message is anything that can be sent in a frame.
type Message interface {
	Type() Type
	// AppendTo appends the message's payload (without frame header) to dst.
	AppendTo(dst []byte) []byte
}

// LaptopType is the kind of laptop ordered.
type LaptopType uint8

// Laptop types, as in the seed: 0 regular, 1 custom (built by an expert).
const (
	Regular LaptopType = 0
	Custom  LaptopType = 1
)

func (l LaptopType) String() string {
	switch l {
	case Regular:
		return "regular"
	case Custom:
		return "custom"
	}
	return fmt.Sprintf("LaptopType(%d)", uint8(l))
}

// Consistency is the guarantee a read asks for (DESIGN §5).
type Consistency uint8

// Read consistency levels.
const (
	Linearizable Consistency = 0 // sees every write acknowledged before the read started
	Session      Consistency = 1 // read-your-writes, monotonic, given MinIndex
	Stale        Consistency = 2 // any committed value
)

func (c Consistency) String() string {
	switch c {
	case Linearizable:
		return "linearizable"
	case Session:
		return "session"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("Consistency(%d)", uint8(c))
}

// ParseConsistency parses the name of a consistency level.
func ParseConsistency(s string) (Consistency, error) {
	for _, c := range []Consistency{Linearizable, Session, Stale} {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown consistency %q (want linearizable, session or stale)", s)
}

// NoOrder is LastOrder of a customer who never ordered (the seed's convention).
const NoOrder int32 = -1

// Order places one order. ClientID and Seq make it exactly-once: a retry
// must carry the same pair (DESIGN §3).
type Order struct {
	CustomerID  int32
	OrderNumber int32
	LaptopType  LaptopType
	ClientID    uint64
	Seq         uint64
}

// Validate reports a field a server must refuse.
func (o Order) Validate() error {
	switch {
	case o.CustomerID < 0:
		return fmt.Errorf("customer id %d is negative", o.CustomerID)
	case o.OrderNumber < 0:
		return fmt.Errorf("order number %d is negative", o.OrderNumber)
	case o.LaptopType != Regular && o.LaptopType != Custom:
		return fmt.Errorf("unknown laptop type %d (want 0 regular or 1 custom)", o.LaptopType)
	case o.ClientID == 0:
		return fmt.Errorf("client id must not be 0")
	case o.Seq == 0:
		return fmt.Errorf("seq must not be 0")
	}
	return nil
}

func (Order) Type() Type { return TypeOrder }

func (o Order) AppendTo(dst []byte) []byte {
	dst = appendI32(dst, o.CustomerID)
	dst = appendI32(dst, o.OrderNumber)
	dst = append(dst, uint8(o.LaptopType))
	dst = appendU64(dst, o.ClientID)
	return appendU64(dst, o.Seq)
}

// DecodeOrder decodes an Order payload.
func DecodeOrder(b []byte) (Order, error) {
	d := decoder{b: b}
	o := Order{CustomerID: d.i32(), OrderNumber: d.i32(), LaptopType: LaptopType(d.u8()),
		ClientID: d.u64(), Seq: d.u64()}
	return o, d.finish("Order")
}

// LaptopInfo answers an Order: who built the laptop, and the Raft index at
// which the order was applied.
type LaptopInfo struct {
	CustomerID  int32
	OrderNumber int32
	LaptopType  LaptopType
	EngineerID  int32
	ExpertID    int32 // -1 for a regular order
	Index       uint64
	// OrderCount is the customer's order_count right after this order: with
	// Index it is the whole record as of Index, which lets a balancer
	// refresh its cache from a write without another read.
	OrderCount uint64
}

func (LaptopInfo) Type() Type { return TypeLaptopInfo }

func (l LaptopInfo) AppendTo(dst []byte) []byte {
	dst = appendI32(dst, l.CustomerID)
	dst = appendI32(dst, l.OrderNumber)
	dst = append(dst, uint8(l.LaptopType))
	dst = appendI32(dst, l.EngineerID)
	dst = appendI32(dst, l.ExpertID)
	dst = appendU64(dst, l.Index)
	return appendU64(dst, l.OrderCount)
}

// DecodeLaptopInfo decodes a LaptopInfo payload.
func DecodeLaptopInfo(b []byte) (LaptopInfo, error) {
	d := decoder{b: b}
	l := LaptopInfo{CustomerID: d.i32(), OrderNumber: d.i32(), LaptopType: LaptopType(d.u8()),
		EngineerID: d.i32(), ExpertID: d.i32(), Index: d.u64(), OrderCount: d.u64()}
	return l, d.finish("LaptopInfo")
}

// Get reads one customer's record. MinIndex matters for Session reads: the
// highest index the client has seen.
type Get struct {
	CustomerID  int32
	Consistency Consistency
	MinIndex    uint64
}

// Validate reports a field a server must refuse.
func (g Get) Validate() error {
	if g.CustomerID < 0 {
		return fmt.Errorf("customer id %d is negative", g.CustomerID)
	}
	return validConsistency(g.Consistency)
}

func validConsistency(c Consistency) error {
	if c > Stale {
		return fmt.Errorf("unknown consistency %d", c)
	}
	return nil
}

func (Get) Type() Type { return TypeGet }

func (g Get) AppendTo(dst []byte) []byte {
	dst = appendI32(dst, g.CustomerID)
	dst = append(dst, uint8(g.Consistency))
	return appendU64(dst, g.MinIndex)
}

// DecodeGet decodes a Get payload.
func DecodeGet(b []byte) (Get, error) {
	d := decoder{b: b}
	g := Get{CustomerID: d.i32(), Consistency: Consistency(d.u8()), MinIndex: d.u64()}
	return g, d.finish("Get")
}
