package raftnode

import (
	"testing"

	"github.com/hashicorp/raft"

	"orderly/fsm"
)

// TestVouch: a node asks the others about a sender missing from a stale
// configuration (here one without n2): a majority of the others list n2
// at its address, and no one lists a stranger.
func TestVouch(t *testing.T) {
	tc := newTestCluster(t)
	tc.leader() // a cluster that has elected, so every node knows the configuration
	n1 := tc.nodes[0]
	f := n1.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	var stale raft.Configuration
	var n2addr raft.ServerAddress
	for _, s := range f.Configuration().Servers {
		if s.ID == "n2" {
			n2addr = s.Address
			continue
		}
		stale.Servers = append(stale.Servers, s)
	}
	if addr, ok := n1.vouched("n2", stale); !ok || addr != n2addr {
		t.Fatalf("n2, missing from a stale configuration: vouched %v at %q, want its address %q", ok, addr, n2addr)
	}
	if addr, ok := n1.vouched("n9", stale); ok {
		t.Fatalf("a stranger was vouched for at %q", addr)
	}
	if _, ok := n1.vouched("n9", f.Configuration()); ok {
		t.Fatal("a stranger was vouched for (its answer kept a second)")
	}
}

// TestShardMapNames: a shard replica that knows an older configuration
// than the map's takes a sender the map names, at its address as a
// member of the cluster; not one the map leaves out, nor a map no newer
// than what the replica knows (its own configuration decides then, as a
// replica that has seen a node's removal must refuse it), nor a node the
// cluster no longer has.
func TestShardMapNames(t *testing.T) {
	meta := raft.Configuration{Servers: []raft.Server{
		{ID: "n1", Address: "10.0.0.1:7000"}, {ID: "n2", Address: "10.0.0.2:7000"}, {ID: "n3", Address: "10.0.0.3:7000"}}}
	s := fsm.SetShard{ID: 1, Epoch: 500, Leader: "n2",
		Replicas: []fsm.ShardReplica{{ID: "n2", Voter: true}, {ID: "n3", Voter: true}, {ID: "n4", Voter: false}}}
	for _, c := range []struct {
		name   string
		known  uint64
		sender string
		want   raft.ServerAddress
	}{
		{"named, the replica behind", 400, "n2", "10.0.0.2:7000"},
		{"named, the replica knowing nothing", 0, "n3", "10.0.0.3:7000"},
		{"not named", 400, "n1", ""},
		{"named, the replica as new as the map", 500, "n2", ""},
		{"named, the replica newer", 600, "n2", ""},
		{"named, not a member of the cluster", 400, "n4", ""},
		{"a stranger", 0, "n9", ""},
	} {
		addr, ok := mapNames(s, c.known, c.sender, meta)
		if addr != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q, %v; want %q", c.name, addr, ok, c.want)
		}
	}
}
