package raftnode

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/internal/freeport"
)

func TestDecideBootstrap(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		answers []peerTerm
		want    bootstrapDecision
	}{
		{"single-node cluster", nil, decideBootstrap},
		{"all empty", []peerTerm{{id: "n2"}, {id: "n3"}}, decideBootstrap},
		{"one has history", []peerTerm{{id: "n2"}, {id: "n3", term: 4, lastLog: 40}}, decideJoin},
		{"one bootstrapped a moment ago", []peerTerm{{id: "n2"}, {id: "n3", term: 1, lastLog: 1}}, decideBootstrap},
		{"history wins over a silent peer", []peerTerm{{id: "n2", err: down}, {id: "n3", term: 2, lastLog: 7}}, decideJoin},
		{"a silent peer is waited for even if another bootstrapped", []peerTerm{{id: "n2", term: 1, lastLog: 1}, {id: "n3", err: down}}, decideWait},
		{"a silent peer is waited for", []peerTerm{{id: "n2"}, {id: "n3", err: down}}, decideWait},
		{"all silent", []peerTerm{{id: "n2", err: down}, {id: "n3", err: down}}, decideWait},
	} {
		if got, why := decide(tc.answers); got != tc.want {
			t.Errorf("%s: decide = %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}

// TestProbeRound probes a running cluster and a dead address over the
// Raft port's peer RPC: the running nodes answer with their term and log
// and keep their state (no new term, same leader), the dead address is an
// error.
func TestProbeRound(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	term := leader.raft.CurrentTerm()
	// Every node holds the leader's first entry before the probe (a
	// follower may not have it yet when the leader is elected).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		caughtUp := true
		for _, n := range tc.nodes {
			caughtUp = caughtUp && n.raft.LastIndex() >= 2
		}
		if caughtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the followers never got the leader's first entry")
		}
	}
	dead, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var peers []Peer
	for _, cfg := range tc.cfgs {
		peers = append(peers, Peer{ID: cfg.ID, RaftAddr: cfg.RaftAddr})
	}
	answers := leader.probeRound(append(peers, Peer{ID: "gone", RaftAddr: dead}))
	for _, a := range answers {
		switch {
		case a.id == "gone" && a.err == nil:
			t.Errorf("probe of a dead address answered term %d", a.term)
		case a.id != "gone" && (a.err != nil || a.term == 0 || a.lastLog < 2):
			t.Errorf("probe of %s: term %d, last log %d, err %v; want its term and log", a.id, a.term, a.lastLog, a.err)
		}
	}
	if d, why := decide(answers); d != decideJoin {
		t.Errorf("decision against a running cluster: %v (%s), want join", d, why)
	}
	if now := leader.raft.CurrentTerm(); now != term || !leader.isReadyLeader() {
		t.Errorf("after the probe the leader is at term %d (was %d), ready %v", now, term, leader.isReadyLeader())
	}
	for _, n := range tc.nodes {
		if n.raft.CurrentTerm() != term {
			t.Errorf("after the probe %s is at term %d, want %d", n.cfg.ID, n.raft.CurrentTerm(), term)
		}
	}
}

// TestVoteGate: a gate held on disk survives a restart, refuses until a
// leader's commit index is known and reached, then opens and forgets the
// marker.
func TestVoteGate(t *testing.T) {
	dir := t.TempDir()
	g, err := newVoteGate(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if g.refuses() {
		t.Fatal("a new data dir's gate refuses votes before anyone held it")
	}
	if err := g.hold(); err != nil {
		t.Fatal(err)
	}
	// A restart reads the marker back.
	if g, err = newVoteGate(dir, hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	var last uint64
	lastIndex := func() uint64 { return last }
	g.last.Store(&lastIndex)
	if !g.refuses() {
		t.Fatal("the gate opened with no leader heard")
	}
	g.sawLeaderCommit(50)
	g.sawLeaderCommit(80) // the first leader commit is the target
	last = 49
	if !g.refuses() {
		t.Fatal("the gate opened at index 49 of 50")
	}
	last = 50
	if g.refuses() {
		t.Fatal("the gate stayed closed after catching up")
	}
	if _, err := os.Stat(filepath.Join(dir, catchingUpFile)); !os.IsNotExist(err) {
		t.Fatalf("marker still there after catching up: %v", err)
	}
	if g, err = newVoteGate(dir, hclog.NewNullLogger()); err != nil || g.refuses() {
		t.Fatalf("after a restart the caught-up node refuses votes (err %v)", err)
	}
}
