package raftnode

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

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

// TestTermProber probes a running cluster and a dead address: the running
// nodes answer with their term and keep their state (no new term, same
// leader), the dead address is an error.
func TestTermProber(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	term := leader.raft.CurrentTerm()
	dead, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p := newTermProber("n9", "127.0.0.1:1", hclog.NewNullLogger())
	defer p.close()
	var peers []Peer
	for _, cfg := range tc.cfgs {
		peers = append(peers, Peer{ID: cfg.ID, RaftAddr: cfg.RaftAddr})
	}
	answers := p.round(append(peers, Peer{ID: "gone", RaftAddr: dead}))
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
	g.lastIndex = func() uint64 { return last }
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

// TestGatedTransport: a node whose gate is closed refuses votes and
// pre-votes in front of Raft, with its real term, and passes everything
// else on; so a bootstrap probe still sees that it has a log.
func TestGatedTransport(t *testing.T) {
	tcp, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := newVoteGate(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := gate.hold(); err != nil {
		t.Fatal(err)
	}
	gate.lastIndex = func() uint64 { return 42 }
	gate.term = func() uint64 { return 7 }
	trans := newGatedTransport(tcp, gate, "n2", hclog.NewNullLogger())
	defer trans.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); trans.run(ctx) }()
	defer func() { cancel(); <-done }()
	// Raft's side: answer AppendEntries; a vote reaching it is a failure.
	var leaked atomic.Int32
	go func() {
		for {
			select {
			case rpc := <-trans.Consumer():
				switch rpc.Command.(type) {
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Term: 7, LastLog: 42}, nil)
				default:
					leaked.Add(1)
					rpc.Respond(nil, errors.New("not for raft"))
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	p := newTermProber("n3", "127.0.0.1:1", hclog.NewNullLogger())
	defer p.close()
	answers := p.round([]Peer{{ID: "n2", RaftAddr: string(tcp.LocalAddr())}})
	if a := answers[0]; a.err != nil || a.term != 7 || a.lastLog != 42 {
		t.Fatalf("probe of a gated node with a log: %+v, want term 7 and last index 42", a)
	}
	var resp raft.RequestVoteResponse
	req := raft.RequestVoteRequest{RPCHeader: p.self, Term: 9, LastLogIndex: 1, LastLogTerm: 1}
	if err := p.trans.RequestVote("n2", tcp.LocalAddr(), &req, &resp); err != nil || resp.Granted || resp.Term != 9 {
		t.Fatalf("vote from a gated node: %+v, %v; want refused at term 9", resp, err)
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("%d vote requests reached Raft through a closed gate", n)
	}
}
