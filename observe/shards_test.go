package observe

import (
	"context"
	"errors"
	"testing"

	"orderly/wire"
)

// TestShardsView: the page's shards table from the map and each
// replica's status: roles, lag behind the highest commit index a replica
// of the shard knows, a replica that does not answer; none for a cluster
// of one shard.
func TestShardsView(t *testing.T) {
	m := wire.ShardMap{Shards: []wire.ShardInfo{
		{ID: 0, SlotLo: 0, SlotHi: 8192, Epoch: 3, Leader: "n1", Replicas: []wire.Replica{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n3"}}},
		{ID: 1, SlotLo: 8192, SlotHi: 16384, Epoch: 5, Replicas: []wire.Replica{{ID: "n2", Voter: true}, {ID: "n3", Voter: true}}},
	}}
	status := map[string]wire.StatusInfo{
		"n1/0": {Role: "leader", CommitIndex: 100, AppliedIndex: 100},
		"n2/0": {Role: "follower", CommitIndex: 98, AppliedIndex: 97},
		"n3/0": {Role: "follower", CommitIndex: 40, AppliedIndex: 40},
		"n3/1": {Role: "candidate", CommitIndex: 7, AppliedIndex: 7},
	}
	s := &Server{opt: Options{Process: Process{
		Shards: func(context.Context) (wire.ShardMap, error) { return m, nil },
		ShardStatus: func(_ context.Context, node string, shard uint32) (wire.StatusInfo, error) {
			st, ok := status[node+"/"+string(rune('0'+shard))]
			if !ok {
				return wire.StatusInfo{}, errors.New("unreachable")
			}
			return st, nil
		},
	}}}
	v := s.shardsView(context.Background())
	if len(v) != 2 || v[0].Customers != "slots 0-8191" || v[0].Leader != "n1" || v[0].Epoch != 3 || v[1].Leader != "" {
		t.Fatalf("shards %+v", v)
	}
	want0 := []replicaView{{"n1", true, "leader", 100, 0}, {"n2", true, "follower", 97, 3}, {"n3", false, "follower", 40, 60}}
	for i, r := range v[0].Replicas {
		if r != want0[i] {
			t.Errorf("shard 0 replica %d: %+v, want %+v", i, r, want0[i])
		}
	}
	if v[0].MaxLag != 60 {
		t.Errorf("shard 0 max lag %d, want 60", v[0].MaxLag)
	}
	if r := v[1].Replicas[0]; r.Role != "unreachable" || r.Lag != 0 {
		t.Errorf("a replica that does not answer: %+v", r)
	}
	m.Shards = m.Shards[:1]
	if v := s.shardsView(context.Background()); v != nil {
		t.Errorf("a cluster of one shard shows shards: %+v", v)
	}
}
