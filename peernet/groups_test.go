package peernet

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// countFSM keeps the commands applied to it.
type countFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return nil
}

func (f *countFSM) applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots here") }
func (f *countFSM) Restore(io.ReadCloser) error         { return fmt.Errorf("no snapshots here") }

// Three nodes, one Raft port each, host two groups: every group elects
// and replicates over the same ports, and an entry reaches only its own
// group's replicas.
func TestGroupsShareOnePort(t *testing.T) {
	const nodes = 3
	groupIDs := []GroupID{0, 7}
	routers := make([]*Groups, nodes)
	ports := make([]*Port, nodes)
	for i := range nodes {
		routers[i] = NewGroups(hclog.NewNullLogger())
		p, err := Listen("127.0.0.1:0", nil, 0, time.Second, routers[i].Deliver, func(string, net.Conn) {}, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
		defer p.Close()
	}
	var servers []raft.Server
	for i := range nodes {
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: raft.ServerAddress(ports[i].Addr()), Suffrage: raft.Voter})
	}
	cfg := raft.Configuration{Servers: servers}
	fsms := map[GroupID][]*countFSM{}
	rafts := map[GroupID][]*raft.Raft{}
	for _, g := range groupIDs {
		for i := range nodes {
			adv, _ := net.ResolveTCPAddr("tcp", ports[i].Addr())
			trans := NewTransport(NewDialer(nil, adv, g), Rules{Config: func() (raft.Configuration, error) { return cfg, nil }},
				hclog.NewNullLogger())
			routers[i].Add(g, trans)
			rc := raft.DefaultConfig()
			rc.LocalID = servers[i].ID
			rc.Logger = hclog.NewNullLogger()
			rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
			store := raft.NewInmemStore()
			f := &countFSM{}
			r, err := raft.NewRaft(rc, f, store, store, raft.NewInmemSnapshotStore(), trans)
			if err != nil {
				t.Fatal(err)
			}
			// Error waits for Raft to stop and closes the transport, whose
			// streams the ports' Close waits for: before the ports close.
			defer func() { _ = r.Shutdown().Error() }()
			fsms[g], rafts[g] = append(fsms[g], f), append(rafts[g], r)
		}
		if err := rafts[g][0].BootstrapCluster(cfg).Error(); err != nil {
			t.Fatalf("bootstrap group %d: %v", g, err)
		}
	}
	for _, g := range groupIDs {
		leader := waitLeader(t, rafts[g])
		if err := leader.Apply([]byte(fmt.Sprintf("group %d", g)), 5*time.Second).Error(); err != nil {
			t.Fatalf("apply in group %d: %v", g, err)
		}
	}
	for _, g := range groupIDs {
		want := fmt.Sprintf("group %d", g)
		for i, f := range fsms[g] {
			deadline := time.Now().Add(5 * time.Second)
			for len(f.applied()) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := f.applied(); len(got) != 1 || got[0] != want {
				t.Errorf("group %d on n%d applied %q, want only %q", g, i+1, got, want)
			}
		}
	}
}

func waitLeader(t *testing.T, rafts []*raft.Raft) *raft.Raft {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil
}

// A stream is judged by the rules of the group it names: a node that is a
// member of group 0 but not of group 7 opens streams in group 0 only, and
// a stream naming a group this node does not host is refused.
func TestStreamsAreJudgedByTheirGroup(t *testing.T) {
	withN3 := raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: "a1"}, {ID: "n3", Address: "a3"}}}
	withoutN3 := raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: "a1"}, {ID: "n2", Address: "a2"}}}
	router := NewGroups(hclog.NewNullLogger())
	adv := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	for g, cfg := range map[GroupID]raft.Configuration{0: withN3, 7: withoutN3} {
		trans := NewTransport(NewDialer(nil, adv, g), Rules{Config: func() (raft.Configuration, error) { return cfg, nil }}, hclog.NewNullLogger())
		defer trans.Close()
		router.Add(g, trans)
	}
	refusedAt := func(g GroupID) bool {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		done := make(chan struct{})
		go func() { router.Deliver("n3", g, ours); close(done) }()
		select {
		case <-done:
			return true // Deliver returned at once: the stream was refused
		case <-time.After(200 * time.Millisecond):
			ours.Close()
			<-done
			return false
		}
	}
	if refusedAt(0) {
		t.Error("n3, a member of group 0, was refused a stream in group 0")
	}
	if !refusedAt(7) {
		t.Error("n3, no member of group 7, opened a stream in group 7")
	}
	if !refusedAt(9) {
		t.Error("a stream naming a group this node does not host was taken")
	}
}
