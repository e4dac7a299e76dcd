package wire

import "fmt"

// Shards asks for the cluster's shard map.
type Shards struct{}

func (Shards) Type() Type                 { return TypeShards }
func (Shards) AppendTo(dst []byte) []byte { return dst }

// ShardReadIndex asks the leader of one shard for a linearizable read
// index (node to node); ReadIndex asks shard 0's.
type ShardReadIndex struct{ Shard uint32 }

func (ShardReadIndex) Type() Type                   { return TypeShardReadIndex }
func (r ShardReadIndex) AppendTo(dst []byte) []byte { return appendU32(dst, r.Shard) }

// DecodeShardReadIndex decodes a ShardReadIndex payload.
func DecodeShardReadIndex(b []byte) (ShardReadIndex, error) {
	d := decoder{b: b}
	r := ShardReadIndex{Shard: d.u32()}
	return r, d.finish("ShardReadIndex")
}

// Replica is one replica of a shard: a node, and whether it votes.
type Replica struct {
	ID    string
	Voter bool
}

// ShardInfo is one shard of the map: the customers it holds (the hash
// slots [SlotLo, SlotHi), package shard), its replicas as its Raft
// configuration names them, the leader as the answering node knows it,
// and its epoch, which grows with every change of the shard's replicas.
type ShardInfo struct {
	ID             uint32
	SlotLo, SlotHi uint32
	Epoch          uint64
	Leader         string // node id, "" if unknown
	LeaderAddr     string // the leader's client address, "" if unknown
	Replicas       []Replica
}

// ShardMap answers Shards: every shard of the cluster, by id.
type ShardMap struct {
	Shards []ShardInfo
}

func (ShardMap) Type() Type { return TypeShardMap }
func (m ShardMap) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(len(m.Shards)))
	for _, s := range m.Shards {
		dst = appendU32(dst, s.ID)
		dst = appendU32(dst, s.SlotLo)
		dst = appendU32(dst, s.SlotHi)
		dst = appendU64(dst, s.Epoch)
		dst = appendStr(dst, s.Leader)
		dst = appendStr(dst, s.LeaderAddr)
		dst = appendU16(dst, uint16(len(s.Replicas)))
		for _, r := range s.Replicas {
			dst = appendBool(appendStr(dst, r.ID), r.Voter)
		}
	}
	return dst
}

// DecodeShardMap decodes a ShardMap payload.
func DecodeShardMap(b []byte) (ShardMap, error) {
	d := decoder{b: b}
	var m ShardMap
	n := int(d.u16())
	// A shard takes at least 26 bytes and a replica 3: do not trust the
	// counts beyond that.
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b) < 26 {
			d.err = ErrShortPayload
			break
		}
		s := ShardInfo{ID: d.u32(), SlotLo: d.u32(), SlotHi: d.u32(), Epoch: d.u64(), Leader: d.str(), LeaderAddr: d.str()}
		r := int(d.u16())
		for j := 0; j < r && d.err == nil; j++ {
			if len(d.b) < 3 {
				d.err = ErrShortPayload
				break
			}
			s.Replicas = append(s.Replicas, Replica{ID: d.str(), Voter: d.u8() != 0})
		}
		m.Shards = append(m.Shards, s)
	}
	return m, d.finish("ShardMap")
}

// PublishShard tells the leader of the meta group (group 0) what a
// shard's leader knows of its shard (node to node): the leader records it
// in the shard map. A node publishes only shards it leads.
type PublishShard struct {
	Shard ShardInfo // LeaderAddr unused: the map takes the published client addresses
	Term  uint64
}

func (PublishShard) Type() Type { return TypePublishShard }
func (p PublishShard) AppendTo(dst []byte) []byte {
	return appendU64(ShardMap{Shards: []ShardInfo{p.Shard}}.AppendTo(dst), p.Term)
}

// DecodePublishShard decodes a PublishShard payload.
func DecodePublishShard(b []byte) (PublishShard, error) {
	if len(b) < 8 {
		return PublishShard{}, ErrShortPayload
	}
	m, err := DecodeShardMap(b[:len(b)-8])
	if err != nil {
		return PublishShard{}, err
	}
	if len(m.Shards) != 1 {
		return PublishShard{}, fmt.Errorf("decode PublishShard: %d shards, want 1", len(m.Shards))
	}
	d := decoder{b: b[len(b)-8:]}
	return PublishShard{Shard: m.Shards[0], Term: d.u64()}, d.finish("PublishShard")
}

// ShardStatus asks a node for its replica of one shard: a StatusInfo of
// that shard's group (Role "none" where it holds no replica).
type ShardStatus struct{ Shard uint32 }

func (ShardStatus) Type() Type                   { return TypeShardStatus }
func (r ShardStatus) AppendTo(dst []byte) []byte { return appendU32(dst, r.Shard) }

// DecodeShardStatus decodes a ShardStatus payload.
func DecodeShardStatus(b []byte) (ShardStatus, error) {
	d := decoder{b: b}
	r := ShardStatus{Shard: d.u32()}
	return r, d.finish("ShardStatus")
}

// ShardMemberOp is what a ShardMember asks of a shard's replicas.
type ShardMemberOp uint8

// Steps of a move (orderctl shards move), each asked of the shard's leader.
const (
	ShardAddNonvoter ShardMemberOp = 1 // add the node as a non-voter (it catches up without a vote)
	ShardPromote     ShardMemberOp = 2 // make the non-voter a voter
	ShardRemove      ShardMemberOp = 3 // remove the node from the shard
	ShardStepDown    ShardMemberOp = 4 // the leader, being the node, hands leadership to another voter
	ShardLeadTo      ShardMemberOp = 5 // the leader hands leadership to the node, a voter (shards balance)
)

// ShardMember changes the replicas of one shard (admin, to the shard's
// leader). Each step may be asked again: one already done answers OK.
type ShardMember struct {
	Shard    uint32
	Op       ShardMemberOp
	ID       string
	RaftAddr string // with ShardAddNonvoter
}

func (ShardMember) Type() Type { return TypeShardMember }
func (m ShardMember) AppendTo(dst []byte) []byte {
	dst = append(appendU32(dst, m.Shard), byte(m.Op))
	return appendStr(appendStr(dst, m.ID), m.RaftAddr)
}

// DecodeShardMember decodes a ShardMember payload.
func DecodeShardMember(b []byte) (ShardMember, error) {
	d := decoder{b: b}
	m := ShardMember{Shard: d.u32(), Op: ShardMemberOp(d.u8()), ID: d.str(), RaftAddr: d.str()}
	return m, d.finish("ShardMember")
}

// ShardScan is a Scan of one shard's customers (node to node: a node that
// holds part of a sharded cluster asks the others for the rest of a page).
type ShardScan struct {
	Shard uint32
	Scan  Scan
}

func (ShardScan) Type() Type { return TypeShardScan }
func (s ShardScan) AppendTo(dst []byte) []byte {
	return s.Scan.AppendTo(appendU32(dst, s.Shard))
}

// DecodeShardScan decodes a ShardScan payload.
func DecodeShardScan(b []byte) (ShardScan, error) {
	d := decoder{b: b}
	s := ShardScan{Shard: d.u32(), Scan: Scan{From: d.i32(), Limit: d.u32(), Consistency: Consistency(d.u8()), MinIndex: d.u64()}}
	return s, d.finish("ShardScan")
}
