package observe

import (
	"context"
	"fmt"
	"sync"
)

// shardView is one shard of a sharded cluster as the page shows it.
type shardView struct {
	ID        uint32        `json:"id"`
	Customers string        `json:"customers"` // its hash slots
	Leader    string        `json:"leader"`
	Epoch     uint64        `json:"epoch"`
	Replicas  []replicaView `json:"replicas"`
	MaxLag    uint64        `json:"max_lag"` // the farthest replica's lag
}

// replicaView is one replica of a shard: its node, whether it votes, its
// role, how far it has applied, and how far that is behind the shard's
// commit index as its leader knows it.
type replicaView struct {
	ID      string `json:"id"`
	Voter   bool   `json:"voter"`
	Role    string `json:"role"` // leader, follower, ... or unreachable
	Applied uint64 `json:"applied"`
	Lag     uint64 `json:"lag"`
}

// shardsView asks for the shard map and every replica's status (at most
// ctx's time): the page's shards table; none for a cluster of one shard.
func (s *Server) shardsView(ctx context.Context) []shardView {
	if s.opt.Shards == nil || s.opt.ShardStatus == nil {
		return nil
	}
	m, err := s.opt.Shards(ctx)
	if err != nil || len(m.Shards) < 2 {
		return nil
	}
	out := make([]shardView, len(m.Shards))
	commits := make([][]uint64, len(m.Shards)) // per replica, the commit index it knows
	var wg sync.WaitGroup
	for i, sh := range m.Shards {
		out[i] = shardView{ID: sh.ID, Customers: fmt.Sprintf("slots %d-%d", sh.SlotLo, sh.SlotHi-1), Leader: sh.Leader,
			Epoch: sh.Epoch, Replicas: make([]replicaView, len(sh.Replicas))}
		commits[i] = make([]uint64, len(sh.Replicas))
		for j, r := range sh.Replicas {
			out[i].Replicas[j] = replicaView{ID: r.ID, Voter: r.Voter, Role: "unreachable"}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := s.opt.ShardStatus(ctx, r.ID, sh.ID)
				if err != nil {
					return
				}
				out[i].Replicas[j].Role, out[i].Replicas[j].Applied = st.Role, st.AppliedIndex
				commits[i][j] = st.CommitIndex
			}()
		}
	}
	wg.Wait()
	for i := range out { // lag: behind the highest commit index a replica of the shard knows
		commit := uint64(0)
		for _, c := range commits[i] {
			commit = max(commit, c)
		}
		for j := range out[i].Replicas {
			r := &out[i].Replicas[j]
			if r.Role != "unreachable" && commit > r.Applied {
				r.Lag = commit - r.Applied
			}
			out[i].MaxLag = max(out[i].MaxLag, r.Lag)
		}
	}
	return out
}
