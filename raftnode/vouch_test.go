package raftnode

import (
	"testing"

	"github.com/hashicorp/raft"
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
