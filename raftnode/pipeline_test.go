//go:build faults

package raftnode

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/faults"
	"orderly/serve"
	"orderly/wire"
)

// TestFollowerCatchesUpAfterAFailedWrite: a follower whose log store
// fails one write (a full disk) while orders stream through pipelined
// replication gets every entry after: the leader's pipeline to it must not
// stall (hashicorp/raft#612; pipeline.go).
func TestFollowerCatchesUpAfterAFailedWrite(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	follower := tc.followerOf(leader)
	ctx, cancel := context.WithCancel(context.Background())
	var placed atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				resp := leader.handle(rctx, serve.Caller{ConnID: 1, Role: wire.RoleAdmin},
					wire.Order{CustomerID: int32(g), OrderNumber: int32(seq), ClientID: uint64(g + 100), Seq: seq})
				rcancel()
				if _, ok := resp.(wire.LaptopInfo); ok {
					placed.Add(1)
				}
			}
		}()
	}
	// A slow disk keeps several AppendEntries in flight to the follower,
	// as a loaded machine does; then one write fails.
	faults.SlowLogWrites(follower.store, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	faults.FailLogWrites(follower.store, 1)
	time.Sleep(1500 * time.Millisecond)
	faults.SlowLogWrites(follower.store, 0)
	cancel()
	wg.Wait()
	if follower.store.errors.Load() == 0 {
		t.Fatal("the follower's failed write did not happen")
	}
	target := leader.raft.LastIndex()
	deadline := time.Now().Add(10 * time.Second)
	for follower.raft.LastIndex() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the follower is stuck at index %d of the leader's %d, 10 s after its failed write (%d orders placed)",
				follower.raft.LastIndex(), target, placed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d orders placed; the follower caught up to index %d after its failed write", placed.Load(), target)
}
