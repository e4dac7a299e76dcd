package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"orderly/client"
	"orderly/harness"
	"orderly/pki"
	"orderly/wire"
)

// tlsFiles builds a client TLS configuration straight from files, without
// pki's checks, as an attacker's program would (an expired certificate,
// one of another CA).
func tlsFiles(t *testing.T, ca, cert, key string) func(string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	var certs []tls.Certificate
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, pair)
	}
	return func(host string) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: certs, ServerName: host}
	}
}

// strangers are clients the cluster must refuse at the handshake.
func strangers(t *testing.T) map[string]func(string) *tls.Config {
	t.Helper()
	other, err := harness.NewCerts(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	expiredDir := t.TempDir()
	past := time.Now().Add(-72 * time.Hour)
	if err := pki.Issue(certs.Dir, expiredDir, pki.Request{Name: "expired", Role: wire.RoleAdmin, NotBefore: past, NotAfter: past.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(certs.Dir, pki.CAFile)
	return map[string]func(string) *tls.Config{
		"no certificate":       tlsFiles(t, ca, "", ""),
		"another CA's admin":   tlsFiles(t, ca, filepath.Join(other.Dir, "orderctl.crt"), filepath.Join(other.Dir, "orderctl.key")),
		"another CA's node n1": tlsFiles(t, ca, filepath.Join(other.Dir, "n1.crt"), filepath.Join(other.Dir, "n1.key")),
		"an expired admin":     tlsFiles(t, ca, filepath.Join(expiredDir, "expired.crt"), filepath.Join(expiredDir, "expired.key")),
	}
}

// TestStrangersAreRefused: no certificate, another CA's, an expired one,
// or plaintext: refused by a node's client port, the balancer and every
// Raft port, before any request is read.
func TestStrangersAreRefused(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	mustOrders(t, []string{b.Addr}, 1, 3)
	ports := append([]string{b.Addr}, c.Addrs()...)
	for name, cfg := range strangers(t) {
		for _, addr := range ports {
			if conn, err := wire.Dial(context.Background(), addr, wire.DialOptions{Timeout: 2 * time.Second, TLS: cfg}); err == nil {
				_, err = conn.Status(context.Background())
				conn.Close()
				if err == nil {
					t.Errorf("%s: %s answered Status", name, addr)
				}
			}
		}
	}
	for _, addr := range ports {
		if _, err := wire.Dial(context.Background(), addr, wire.DialOptions{Timeout: 2 * time.Second}); err == nil {
			t.Errorf("plaintext: %s let a client in", addr)
		}
	}
	// The refusals are in the logs, with the reason.
	waitFor(t, 5*time.Second, "a logged TLS refusal", func() bool {
		log, _ := os.ReadFile(c.Nodes[0].LogPath)
		return strings.Contains(string(log), "refused connection") && strings.Contains(string(log), "TLS handshake")
	})
}

// raftDialer is an attacker's raft.StreamLayer: it dials a Raft port with
// the TLS it is given and asks for a Raft stream.
type raftDialer struct {
	tls    func(string) *tls.Config
	closed chan struct{}
}

func (d *raftDialer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		host, _, _ := net.SplitHostPort(string(addr))
		tc := tls.Client(c, d.tls(host))
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	if _, err := c.Write([]byte{'R'}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (d *raftDialer) Accept() (net.Conn, error) { <-d.closed; return nil, net.ErrClosed }
func (d *raftDialer) Close() error {
	select {
	case <-d.closed:
	default:
		close(d.closed)
	}
	return nil
}
func (d *raftDialer) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// forge sends, as claim, a RequestVote with a huge term, an AppendEntries
// that overwrites the log with a forged order, and a TimeoutNow to every
// node, and returns how many were accepted.
func forge(t *testing.T, c *harness.Cluster, cfg func(string) *tls.Config, claim string) int {
	t.Helper()
	return forgeAs(t, c, cfg, claim, c.Node(claim).RaftAddr, false)
}

// forgeAs is forge with the sender's address given (a node that is no
// member has none in the cluster); withSnapshot adds an InstallSnapshot
// of an empty state at index 2^20.
func forgeAs(t *testing.T, c *harness.Cluster, cfg func(string) *tls.Config, claim, addr string, withSnapshot bool) int {
	t.Helper()
	d := &raftDialer{tls: cfg, closed: make(chan struct{})}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: d, MaxPool: 1, Timeout: 2 * time.Second})
	defer trans.Close()
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(claim), Addr: []byte(addr)}
	accepted := 0
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		id, addr := raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr)
		var vr raft.RequestVoteResponse
		if err := trans.RequestVote(id, addr, &raft.RequestVoteRequest{RPCHeader: hdr, Term: 1 << 40, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40}, &vr); err == nil {
			accepted++
			t.Logf("vote as %s accepted by %s: %+v", claim, n.ID, vr)
		}
		var ar raft.AppendEntriesResponse
		forged := &raft.Log{Index: 3, Term: 1 << 41, Type: raft.LogCommand, Data: []byte{0xff, 0xff}}
		if err := trans.AppendEntries(id, addr, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 1 << 41, PrevLogEntry: 2, PrevLogTerm: 1,
			Entries: []*raft.Log{forged}, LeaderCommitIndex: 3}, &ar); err == nil {
			accepted++
			t.Logf("append entries as %s accepted by %s: %+v", claim, n.ID, ar)
		}
		var tr raft.TimeoutNowResponse
		if err := trans.TimeoutNow(id, addr, &raft.TimeoutNowRequest{RPCHeader: hdr}, &tr); err == nil {
			accepted++
			t.Logf("timeout now as %s accepted by %s", claim, n.ID)
		}
		if withSnapshot {
			var sr raft.InstallSnapshotResponse
			empty := []byte("{}")
			if err := trans.InstallSnapshot(id, addr, &raft.InstallSnapshotRequest{RPCHeader: hdr, SnapshotVersion: raft.SnapshotVersionMax,
				Term: 1 << 41, LastLogIndex: 1 << 20, LastLogTerm: 1 << 41, Size: int64(len(empty))}, &sr, bytes.NewReader(empty)); err == nil {
				accepted++
				t.Logf("install snapshot as %s accepted by %s: %+v", claim, n.ID, sr)
			}
		}
	}
	return accepted
}

// TestRaftPortRefusesNonMembers: a node certificate of the cluster's CA
// is not enough. n9's (never a member) and n3's once n3 is removed send,
// as themselves, a vote at term 2^40, an AppendEntries with a forged
// entry, TimeoutNow and an InstallSnapshot of an empty state at index
// 2^20: none reaches Raft. Term, leader and every replica's data are
// unchanged, linearizable reads still see every acknowledged order, and
// orders go on.
func TestRaftPortRefusesNonMembers(t *testing.T) {
	c := startCluster(t)
	mustOrders(t, c.Addrs(), 7, 5)
	n9, err := pki.Load(pki.InDir(certs.Dir, "n9"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n3, err := pki.Load(pki.InDir(certs.Dir, "n3"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Node("n3").Kill(); err != nil {
		t.Fatal(err)
	}
	mustOrderctl(t, c.Addrs()[:2], "members", "remove", "--id", "n3")
	leader := mustLeader(t, c)
	before := map[string]wire.StatusInfo{}
	for _, n := range c.Nodes[:2] {
		st, err := c.Status(context.Background(), n.ClientAddr)
		if err != nil {
			t.Fatal(err)
		}
		before[n.ID] = st
	}
	for name, f := range map[string]struct {
		tls  func(string) *tls.Config
		id   string
		addr string
	}{
		"n9, never a member":   {n9.NodeClientConfig, "n9", "127.0.0.1:1"},
		"n3, a removed member": {n3.NodeClientConfig, "n3", c.Node("n3").RaftAddr},
	} {
		for range 3 {
			if n := forgeAs(t, c, f.tls, f.id, f.addr, true); n != 0 {
				t.Errorf("%s: %d Raft requests accepted", name, n)
			}
		}
	}
	for _, n := range c.Nodes[:2] {
		st, err := c.Status(context.Background(), n.ClientAddr)
		if err != nil {
			t.Fatal(err)
		}
		if st.Term != before[n.ID].Term || st.LeaderID != leader.ID || st.LastIndex < before[n.ID].LastIndex {
			t.Errorf("%s after the attacks: term %d leader %s last index %d; before: term %d leader %s last index %d",
				n.ID, st.Term, st.LeaderID, st.LastIndex, before[n.ID].Term, leader.ID, before[n.ID].LastIndex)
		}
		if r := mustGet(t, mustClient(t, n.ClientAddr), 7, wire.Linearizable); r.OrderCount != 5 || r.LastOrder != 5 {
			t.Errorf("customer 7 on %s after the attacks: %+v, want 5 orders", n.ID, r)
		}
	}
	if _, err := mustClient(t, c.Addrs()[:2]...).Order(context.Background(), 7, 6, wire.Regular); err != nil {
		t.Fatalf("an order after the attacks: %v", err)
	}
	log, _ := os.ReadFile(c.Node("n1").LogPath)
	if !strings.Contains(string(log), "not a member of the cluster") {
		t.Errorf("n1's log does not say that a non-member was refused")
	}
}

// TestRaftPortRefusesForgers replays the attacks on the Raft port: a
// process without a node certificate of the cluster, and node n1's
// certificate claiming to be n2, send a RequestVote with a huge term, an
// AppendEntries that would overwrite acknowledged orders, and TimeoutNow.
// Leader, term and data are unchanged, and the cluster goes on.
func TestRaftPortRefusesForgers(t *testing.T) {
	c := startCluster(t)
	leader := mustLeader(t, c)
	mustOrders(t, c.Addrs(), 7, 5)
	before := map[string]wire.StatusInfo{}
	for _, n := range c.Nodes {
		st, err := c.Status(context.Background(), n.ClientAddr)
		if err != nil {
			t.Fatal(err)
		}
		before[n.ID] = st
	}
	attackers := strangers(t)
	admin, err := certs.Client("orderctl")
	if err != nil {
		t.Fatal(err)
	}
	attackers["the cluster's admin (no node)"] = admin
	attackers["plaintext"] = nil
	for name, cfg := range attackers {
		if n := forge(t, c, cfg, "n2"); n != 0 {
			t.Errorf("%s: %d forged Raft requests accepted", name, n)
		}
	}
	n1, err := pki.Load(pki.InDir(certs.Dir, "n1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := forge(t, c, n1.NodeClientConfig, "n2"); n != 0 {
		t.Errorf("n1's certificate as n2: %d forged Raft requests accepted", n)
	}
	for _, n := range c.Nodes {
		st, err := c.Status(context.Background(), n.ClientAddr)
		if err != nil {
			t.Fatal(err)
		}
		if st.Term != before[n.ID].Term || st.LeaderID != leader.ID {
			t.Errorf("%s after the attacks: term %d leader %s; before: term %d leader %s", n.ID, st.Term, st.LeaderID, before[n.ID].Term, leader.ID)
		}
	}
	cl := mustClient(t, c.Addrs()...)
	for _, n := range c.Nodes {
		r := mustGet(t, mustClient(t, n.ClientAddr), 7, wire.Linearizable)
		if r.OrderCount != 5 || r.LastOrder != 5 {
			t.Errorf("customer 7 on %s after the attacks: %+v, want 5 orders", n.ID, r)
		}
	}
	if _, err := cl.Order(context.Background(), 7, 6, wire.Regular); err != nil {
		t.Fatalf("an order after the attacks: %v", err)
	}
	log, _ := os.ReadFile(c.Node("n2").LogPath)
	if !strings.Contains(string(log), `node \"n1\" sent a request as \"n2\"`) && !strings.Contains(string(log), `node "n1" sent a request as "n2"`) {
		t.Errorf("n2's log does not say that n1 claimed to be n2")
	}
}

// connAs is a raw connection to addr presenting certificate name.
func connAs(t *testing.T, name, addr string) *wire.Conn {
	t.Helper()
	tlsFor, err := certs.Client(name)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := wire.Dial(context.Background(), addr, wire.DialOptions{TLS: tlsFor})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// peerAs opens a peer stream to a node's Raft port with a certificate of
// the test CA, as a node does to call another (raftnode/peers.go).
func peerAs(t *testing.T, name, raftAddr string) *wire.Conn {
	t.Helper()
	tlsFor, err := certs.Client(name)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(raftAddr)
	nc, err := tls.Dial("tcp", raftAddr, tlsFor(host))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write([]byte{'P'}); err != nil {
		t.Fatal(err)
	}
	conn, err := wire.Open(nc, wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func clientAs(t *testing.T, name string, addrs ...string) *client.Client {
	t.Helper()
	tlsFor, err := certs.Client(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Addrs: addrs, RetryTimeout: 10 * time.Second, DialTimeout: 10 * time.Second, TLS: tlsFor})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	if code, ok := wire.CodeOf(err); !ok || code != wire.CodePermissionDenied {
		t.Errorf("%s: %v, want PermissionDenied", what, err)
	}
}

// TestRoles: what each role may do, on a node and through the balancer,
// which passes its client's role on and never its own.
func TestRoles(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	leader := mustLeader(t, c)
	ctx := context.Background()
	for _, where := range []struct {
		name  string
		addrs []string
	}{{"on the nodes", c.Addrs()}, {"through the balancer", []string{b.Addr}}} {
		reader := clientAs(t, "reader", where.addrs...)
		_, err := reader.Order(ctx, 3, 1, wire.Regular)
		wantDenied(t, "a reader's order "+where.name, err)
		if err != nil && !strings.Contains(err.Error(), "needs role writer or admin") {
			t.Errorf("the refusal does not name the role needed: %v", err)
		}
		if _, err := reader.Get(ctx, 3, wire.Linearizable); err != nil {
			t.Errorf("a reader's read %s: %v", where.name, err)
		}
		writer := clientAs(t, "writer", where.addrs...)
		if _, err := writer.Order(ctx, 3, 1+int32(len(where.name)), wire.Regular); err != nil {
			t.Errorf("a writer's order %s: %v", where.name, err)
		}
		wantDenied(t, "a writer's members remove "+where.name, writer.Admin(ctx, wire.RemoveMember{ID: "n3"}))
		wantDenied(t, "a writer's transfer-leader "+where.name, writer.Admin(ctx, wire.TransferLeader{}))
		_, err = writer.Backup(ctx, wire.Backup{})
		wantDenied(t, "a writer's backup "+where.name, err)
		admin := clientAs(t, "orderctl", where.addrs...)
		wantDenied(t, "an admin's Publish "+where.name, admin.Admin(ctx, wire.Publish{ID: leader.ID, ClientAddr: "127.0.0.1:1"}))
	}
	// Only a node reports a disk alarm, and only its own: anyone else
	// could stop every order of the cluster with one.
	for _, try := range []struct{ cert, id string }{{"orderctl", "n1"}, {"writer", "n1"}, {"orderlb", "n1"}, {"n1", "n2"}} {
		conn := connAs(t, try.cert, leader.ClientAddr)
		_, err := wire.CallAs[wire.AlarmList](ctx, conn, wire.ReportAlarms{ID: try.id,
			Alarms: []wire.Alarm{{Member: try.id, Kind: wire.AlarmNoSpace, Message: "forged"}}}, 0)
		conn.Close()
		wantDenied(t, try.cert+" reporting a disk alarm of "+try.id, err)
	}
	if _, err := clientAs(t, "writer", leader.ClientAddr).Order(ctx, 3, 99, wire.Regular); err != nil {
		t.Errorf("an order after the forged alarm reports: %v", err)
	}
	// A node may publish its own address only: n1 cannot redirect the
	// cluster's clients to an impostor by publishing as the leader.
	victim := c.Node("n2")
	if leader.ID == "n2" {
		victim = c.Node("n3")
	}
	n1 := clientAs(t, "n1", leader.ClientAddr)
	wantDenied(t, "n1 publishing as "+victim.ID, n1.Admin(ctx, wire.Publish{ID: victim.ID, ClientAddr: "127.0.0.1:1"}))
	// Only a balancer forwards with its client's role: a writer wrapping a
	// member removal as an admin's, sent straight to the leader, is refused,
	// and a balancer cannot claim a node's role for its client.
	for _, try := range []struct {
		cert string
		req  wire.AsRole
	}{
		{"writer", wire.AsRole{Role: wire.RoleAdmin, Msg: wire.RemoveMember{ID: victim.ID}}},
		{"orderlb", wire.AsRole{Role: wire.RoleNode, Msg: wire.Publish{ID: victim.ID, ClientAddr: "127.0.0.1:1"}}},
	} {
		conn := connAs(t, try.cert, leader.ClientAddr)
		err := conn.Admin(ctx, try.req)
		conn.Close()
		if code, _ := wire.CodeOf(err); err == nil || (code != wire.CodePermissionDenied && code != wire.CodeBadRequest) {
			t.Errorf("%s sending %s as %s: %v, want refused", try.cert, try.req.Msg.Type(), try.req.Role, err)
		}
	}
	// A balancer's certificate forwards writers at most unless it was
	// issued more: a stolen one is not the whole cluster. An admin's
	// backup and leadership transfer through the balancer are refused, as
	// is the balancer's own AsRole admin sent straight to the leader; a
	// balancer certificate issued --max-role admin may.
	admin := clientAs(t, "orderctl", b.Addr)
	_, err := admin.Backup(ctx, wire.Backup{})
	wantDenied(t, "an admin's backup through a writer-bound balancer", err)
	wantDenied(t, "an admin's transfer-leader through a writer-bound balancer", admin.Admin(ctx, wire.TransferLeader{}))
	if err := pki.Issue(certs.Dir, certs.Dir, pki.Request{Name: "orderlb-admin", Role: wire.RoleBalancer, MaxRole: wire.RoleAdmin,
		Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	for cert, allowed := range map[string]bool{"orderlb": false, "orderlb-admin": true} {
		conn := connAs(t, cert, leader.ClientAddr)
		_, err := wire.CallAs[wire.BackupChunk](ctx, conn, wire.AsRole{Role: wire.RoleAdmin, Msg: wire.Backup{}}, 0)
		conn.Close()
		if allowed && err != nil {
			t.Errorf("%s forwarding an admin's backup: %v", cert, err)
		}
		if !allowed {
			wantDenied(t, cert+" forwarding an admin's backup", err)
		}
	}
	// A node forwards its HTTP API's orders to the leader as AsRole on a
	// peer stream of the leader's Raft port, at most writer, and only
	// while a member: n9 (no member) is refused there; a member's admin
	// call is refused; and no node certificate forwards on a client port,
	// the leader's or a balancer's.
	order := wire.Order{CustomerID: 4, OrderNumber: 1, ClientID: 0xabc, Seq: 1}
	for _, try := range []struct {
		cert, why string
		conn      *wire.Conn
		req       wire.Message
	}{
		{"n9", "a non-member node forwarding an order", peerAs(t, "n9", leader.RaftAddr), wire.AsRole{Role: wire.RoleWriter, Msg: order}},
		{"n9", "a non-member node's ReadIndex", peerAs(t, "n9", leader.RaftAddr), wire.ReadIndex{}},
		{"n1", "a member node forwarding an admin call", peerAs(t, "n1", leader.RaftAddr), wire.AsRole{Role: wire.RoleAdmin, Msg: wire.TransferLeader{}}},
		{"n1", "a member node forwarding an order on the leader's client port", connAs(t, "n1", leader.ClientAddr), wire.AsRole{Role: wire.RoleWriter, Msg: order}},
		{"n1", "a member node forwarding an order through the balancer", connAs(t, "n1", b.Addr), wire.AsRole{Role: wire.RoleWriter, Msg: order}},
	} {
		_, err := wire.CallAs[wire.Message](ctx, try.conn, try.req, 0)
		try.conn.Close()
		wantDenied(t, try.why, err)
	}
	// What a node needs before it is a member (the bootstrap probe,
	// vouching) it may ask; a member forwards orders.
	stranger := peerAs(t, "n9", leader.RaftAddr)
	if st, err := stranger.Status(ctx); err != nil || st.ID != leader.ID {
		t.Errorf("a non-member node's Status on a peer stream: %+v, %v", st, err)
	}
	stranger.Close()
	member := peerAs(t, "n1", leader.RaftAddr)
	if li, err := wire.CallAs[wire.LaptopInfo](ctx, member, wire.AsRole{Role: wire.RoleWriter, Msg: order}, 0); err != nil || li.CustomerID != 4 {
		t.Errorf("a member node forwarding an order on a peer stream: %+v, %v", li, err)
	}
	member.Close()
	// A node certificate of no member cannot add a member entry.
	n9 := clientAs(t, "n9", leader.ClientAddr)
	if err := n9.Admin(ctx, wire.Publish{ID: "n9", ClientAddr: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("a non-member's Publish: %v, want refused as not a member", err)
	}
	st, err := c.Status(ctx, leader.ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.ClientAddr == "127.0.0.1:1" {
			t.Errorf("member %s took the impostor's address", m.ID)
		}
	}
	// The membership is whole.
	if len(st.Members) != 3 {
		t.Errorf("members after the refused calls: %+v", st.Members)
	}
	// orderctl, through the binary: the refusal and its reason.
	out, err := exec.Command(filepath.Join(bin, "orderctl"), "--as", "reader", "--addr", b.Addr, "order", "--customer", "4", "--number", "1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "PermissionDenied") || !strings.Contains(string(out), "role reader") {
		t.Errorf("orderctl --as reader order: %v\n%s", err, out)
	}
}

// TestTLSFlagsCannotLie: without certificates a daemon refuses to start
// (plaintext only with --insecure, which warns), a certificate of the
// wrong role or name is refused, and the seed port stays on loopback
// unless --legacy-public says otherwise.
func TestTLSFlagsCannotLie(t *testing.T) {
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s %v did not exit:\n%s", name, args, out)
		}
		if err == nil {
			t.Fatalf("%s %v started:\n%s", name, args, out)
		}
		return string(out)
	}
	tlsOf := func(n string) []string { return certs.Flags(n) }
	cases := []struct {
		bin  string
		args []string
		want string
	}{
		{"orderd", []string{"--id", "n1", "--data-dir", dir}, "TLS is on by default"},
		{"orderd", append([]string{"--id", "n2", "--data-dir", dir}, tlsOf("n1")...), `needs a node certificate named n2`},
		{"orderd", append([]string{"--id", "n1", "--data-dir", dir}, tlsOf("orderctl")...), `needs a node certificate`},
		{"orderd", append([]string{"--id", "n1", "--data-dir", dir, "--insecure"}, tlsOf("n1")...), "choose one"},
		{"orderlb", []string{"--backends", "127.0.0.1:1"}, "TLS is on by default"},
		{"orderlb", append([]string{"--backends", "127.0.0.1:1"}, tlsOf("n1")...), "needs a balancer certificate"},
		{"orderlb", append([]string{"--backends", "127.0.0.1:1", "--legacy-listen", "0.0.0.0:0"}, tlsOf("orderlb")...), "loopback unless --legacy-public"},
	}
	for _, c := range cases {
		if out := run(c.bin, c.args...); !strings.Contains(out, c.want) {
			t.Errorf("%s %v: want %q in:\n%s", c.bin, c.args, c.want, out)
		}
	}
}

// TestCertRotationUnderLoad: new certificates for every node and the
// balancer, written over the old files while orders flow through the
// balancer: no client error, and new connections present the new
// certificates (file watch; SIGHUP forces it and leaves the process up).
func TestCertRotationUnderLoad(t *testing.T) {
	own, err := harness.NewCerts(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := harness.StartCluster(harness.ClusterConfig{Certs: own, Orderd: filepath.Join(bin, "orderd"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	lb, err := c.StartBalancer(filepath.Join(bin, "orderlb"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Options{Addrs: []string{lb.Addr}, RetryTimeout: 10 * time.Second, TLS: own.Admin()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	load := startOrderLoad(cl, 11)
	defer load.cancel()
	serialOf := func(addr string) string {
		conn, err := tls.Dial("tcp", addr, own.Admin()("127.0.0.1"))
		if err != nil {
			return "dial: " + err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	fileSerial := func(name string) string {
		b, err := os.ReadFile(filepath.Join(own.Dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(b, mustRead(t, filepath.Join(own.Dir, name+".key")))
		if err != nil {
			t.Fatal(err)
		}
		return pair.Leaf.SerialNumber.String()
	}
	time.Sleep(500 * time.Millisecond)
	servers := map[string]string{lb.Addr: "orderlb"}
	for _, n := range c.Nodes {
		servers[n.ClientAddr], servers[n.RaftAddr] = n.ID, n.ID
	}
	for _, name := range []string{"n1", "n2", "n3", "orderlb"} {
		role := "node"
		if name == "orderlb" {
			role = "balancer"
		}
		out, err := exec.Command(filepath.Join(bin, "orderctl"), "certs", "issue", "--dir", own.Dir, "--name", name,
			"--role", role, "--hosts", "127.0.0.1,localhost", "--force").CombinedOutput()
		if err != nil {
			t.Fatalf("reissue %s: %v\n%s", name, err, out)
		}
	}
	if err := c.Node("n2").Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for addr, name := range servers {
		want := fileSerial(name)
		waitFor(t, 10*time.Second, fmt.Sprintf("%s (%s) to present its new certificate", addr, name), func() bool { return serialOf(addr) == want })
	}
	time.Sleep(500 * time.Millisecond)
	placed := load.stop(t, "during the rotation")
	if !c.Node("n2").Running() {
		t.Fatal("SIGHUP stopped n2")
	}
	t.Logf("%d orders placed through the rotation, none failed", placed)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRateLimitPerClient: a balancer with --rate-limit 20 answers a
// client over its rate Overloaded, counting all of that client's
// connections together, while another client goes on unharmed; its
// requests still reach the nodes, which do not count the balancer.
func TestRateLimitPerClient(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c, "--rate-limit", "20")
	ctx := context.Background()
	writerTLS, err := certs.Client("writer")
	if err != nil {
		t.Fatal(err)
	}
	var conns []*wire.Conn
	for range 2 {
		conn, err := wire.Dial(ctx, b.Addr, wire.DialOptions{TLS: writerTLS})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	over := 0
	for i := range 100 {
		if _, err := conns[i%2].Get(ctx, wire.Get{CustomerID: 1, Consistency: wire.Stale}); err != nil {
			if code, _ := wire.CodeOf(err); code != wire.CodeOverloaded {
				t.Fatalf("over the rate: %v, want Overloaded", err)
			}
			over++
		}
	}
	if over < 50 {
		t.Fatalf("%d of 100 back-to-back reads on two connections refused at 20/s", over)
	}
	reader := clientAs(t, "reader", b.Addr)
	for i := range 5 {
		if _, err := reader.Get(ctx, 1, wire.Linearizable); err != nil {
			t.Fatalf("another client's read %d: %v", i, err)
		}
	}
	st, err := c.Status(ctx, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if statOf(st, "rate_limit_per_client") != 20 {
		t.Errorf("status does not show the rate limit: %+v", st.Stats)
	}
}

// TestRevokedCertificateIsRefused: `orderctl certs revoke` adds a
// certificate to the deny-list beside the CA; every process (node and
// balancer) refuses it from its next handshake, within seconds, without
// a restart, while the other clients go on.
func TestRevokedCertificateIsRefused(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	if err := pki.Issue(certs.Dir, certs.Dir, pki.Request{Name: "leaked-writer", Role: wire.RoleWriter}); err != nil {
		t.Fatal(err)
	}
	order := func(addr string, k int32) error {
		tlsFor, err := certs.Client("leaked-writer")
		if err != nil {
			t.Fatal(err)
		}
		cl, err := client.New(client.Options{Addrs: []string{addr}, RetryTimeout: 2 * time.Second, DialTimeout: 2 * time.Second, TLS: tlsFor})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		_, err = cl.Order(context.Background(), 12, k, wire.Regular)
		return err
	}
	for i, addr := range []string{b.Addr, c.Nodes[0].ClientAddr} {
		if err := order(addr, int32(i+1)); err != nil {
			t.Fatalf("the certificate before its revocation, at %s: %v", addr, err)
		}
	}
	out := mustOrderctl(t, nil, "certs", "revoke", "--dir", certs.Dir, "--name", "leaked-writer")
	if !strings.Contains(out, "revoked") {
		t.Fatalf("orderctl certs revoke: %s", out)
	}
	time.Sleep(1500 * time.Millisecond) // the processes look at the files once a second
	for _, addr := range []string{b.Addr, c.Nodes[0].ClientAddr, c.Nodes[1].ClientAddr} {
		if err := order(addr, 9); err == nil {
			t.Errorf("the revoked certificate ordered at %s", addr)
		}
	}
	if _, err := clientAs(t, "writer", b.Addr).Order(context.Background(), 12, 10, wire.Regular); err != nil {
		t.Fatalf("another writer after the revocation: %v", err)
	}
	log, _ := os.ReadFile(c.Nodes[0].LogPath)
	if !strings.Contains(string(log), "is revoked") {
		t.Errorf("n1's log does not say the certificate is revoked")
	}
}
