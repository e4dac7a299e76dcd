package raftnode

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"

	"orderly/chaos"
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
		{"one has state", []peerTerm{{id: "n2"}, {id: "n3", term: 4}}, decideJoin},
		{"state wins over a silent peer", []peerTerm{{id: "n2", err: down}, {id: "n3", term: 1}}, decideJoin},
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
	dead, err := chaos.FreePort("127.0.0.1")
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
		case a.id != "gone" && (a.err != nil || a.term == 0):
			t.Errorf("probe of %s: term %d, err %v; want its term", a.id, a.term, a.err)
		}
	}
	if d, why := decide(answers); d != decideJoin {
		t.Errorf("decision against a running cluster: %v (%s), want join", d, why)
	}
	if now := leader.raft.CurrentTerm(); now != term || !leader.isReadyLeader() {
		t.Errorf("after the probe the leader is at term %d (was %d), ready %v", now, term, leader.isReadyLeader())
	}
}
