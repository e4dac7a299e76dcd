package observe

import (
	"strings"
	"testing"
)

// TestDroppedRaftSeries: the per-RPC and per-heartbeat series are dropped,
// the per-batch, per-election and per-snapshot ones kept.
func TestDroppedRaftSeries(t *testing.T) {
	for key, want := range map[string]bool{
		"orderly.raft.net.rpcDecode.AppendEntries":       true,
		"orderly.raft.rpc.processHeartbeat":              true,
		"orderly.raft.rpc.appendEntries":                 true,
		"orderly.raft.rpc.appendEntries.storeLogs":       true,
		"orderly.raft.replication.heartbeat":             true,
		"orderly.raft.replication.heartbeat.n2":          true,
		"orderly.raft.replication.appendEntries.rpc.n2":  true,
		"orderly.raft.replication.appendEntries.logs.n3": true,
		"orderly.raft.verify_leader":                     true,
		"orderly.raft.apply":                             true,
		"orderly.raft.replication.appendEntries.rpc":     false,
		"orderly.raft.replication.appendEntries.logs":    false,
		"orderly.raft.commitTime":                        false,
		"orderly.raft.fsm.applyBatch":                    false,
		"orderly.raft.leader.lastContact":                false,
		"orderly.raft.state.leader":                      false,
		"orderly.raft.snapshot.persist":                  false,
		"orderly.raft.rpc.requestVote":                   false,
		"orderly.raft.apply.other":                       false,
		"orderly.boltdb.storeLogs":                       false,
	} {
		if got := dropped(strings.Split(key, ".")); got != want {
			t.Errorf("dropped(%s) = %v, want %v", key, got, want)
		}
	}
}
