package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// The shard map of a sharded cluster lives in the meta group's state
// (group 0): each shard's leader publishes what its own group's Raft says
// of it (SetShard, version 3), and the map keeps the newest. The shard's
// own configuration stays the truth; the map is what every node, client
// and balancer can read of every shard, including shards a node holds no
// replica of. As a TiKV region's epoch orders the heartbeats PD keeps,
// (Epoch, Term) orders these: an older one never replaces a newer.

// ShardReplica is one replica of a shard.
type ShardReplica struct {
	ID    string
	Voter bool
}

// SetShard publishes one shard as its leader sees it.
type SetShard struct {
	ID       uint32
	Epoch    uint64 // the index of the shard's configuration
	Term     uint64 // the leader's term in the shard's group
	Leader   string
	Replicas []ShardReplica
}

// MaxShardReplicas bounds a SetShard's replica list.
const MaxShardReplicas = 64

// AppendSetShard encodes a SetShard command.
func AppendSetShard(dst []byte, c SetShard) []byte {
	dst = append(dst, byte(CmdSetShard))
	dst = binary.BigEndian.AppendUint32(dst, c.ID)
	dst = binary.BigEndian.AppendUint64(dst, c.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, c.Term)
	dst = appendString(dst, c.Leader)
	dst = append(dst, byte(len(c.Replicas)))
	for _, r := range c.Replicas {
		dst = appendString(dst, r.ID)
		dst = append(dst, boolByte(r.Voter))
	}
	return dst
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func decodeSetShard(b []byte) (SetShard, error) {
	bad := fmt.Errorf("%w: malformed SetShard", ErrBadCommand)
	if len(b) < 1+4+8+8 {
		return SetShard{}, bad
	}
	be := binary.BigEndian
	c := SetShard{ID: be.Uint32(b[1:]), Epoch: be.Uint64(b[5:]), Term: be.Uint64(b[13:])}
	var ok bool
	if c.Leader, b, ok = cutString(b[21:]); !ok || len(b) < 1 {
		return SetShard{}, bad
	}
	n := int(b[0])
	b = b[1:]
	if n > MaxShardReplicas {
		return SetShard{}, bad
	}
	for range n {
		var r ShardReplica
		if r.ID, b, ok = cutString(b); !ok || len(b) < 1 || b[0] > 1 {
			return SetShard{}, bad
		}
		r.Voter, b = b[0] == 1, b[1:]
		c.Replicas = append(c.Replicas, r)
	}
	if len(b) != 0 {
		return SetShard{}, bad
	}
	return c, nil
}

// newer says whether c may replace have.
func (c SetShard) newer(have SetShard) bool {
	if c.Epoch != have.Epoch {
		return c.Epoch > have.Epoch
	}
	return c.Term >= have.Term
}

func (s *state) setShard(c SetShard) {
	if have, ok := s.shards[c.ID]; ok && !c.newer(have) {
		return
	}
	c.Replicas = slices.Clone(c.Replicas)
	s.shards[c.ID] = c
}

// ShardMap is the shard map as this replica has applied it, by shard id.
func (f *FSM) ShardMap() []SetShard {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]SetShard, 0, len(f.st.shards))
	for _, s := range f.st.shards {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b SetShard) int { return int(a.ID) - int(b.ID) })
	return out
}

// ForgetShardMap drops the shard map, as a restore into a new cluster
// does: it named the old cluster's replicas, and each shard's leader
// publishes the new ones.
func (f *FSM) ForgetShardMap() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.st.shards)
}

// Shard is shard id's entry of the map, if it has one.
func (f *FSM) Shard(id uint32) (SetShard, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.st.shards[id]
	return s, ok
}

// Same says whether c and o describe the shard alike.
func (c SetShard) Same(o SetShard) bool {
	return c.ID == o.ID && c.Epoch == o.Epoch && c.Term == o.Term && c.Leader == o.Leader && slices.Equal(c.Replicas, o.Replicas)
}
