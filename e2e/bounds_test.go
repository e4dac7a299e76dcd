package e2e

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderly/harness"
	"orderly/wire"
)

// rssBytes is a process's resident memory.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// flood opens n TCP connections to addr and holds them (nothing sent);
// the returned func closes them.
func flood(t *testing.T, addr string, n int) func() {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue // the backlog is full: that is the point
		}
		conns = append(conns, c)
	}
	t.Logf("flood: %d of %d connections to %s open", len(conns), n, addr)
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestConnectionFloods: n1 runs with 1,024 file descriptors, so a flood
// of connections makes its accept fail with EMFILE; the balancer gets more
// connections than its --max-conns. Neither gives up its listener: an
// existing client's orders go on throughout, and once the flood is closed
// both take new clients again.
func TestConnectionFloods(t *testing.T) {
	wrapper := filepath.Join(t.TempDir(), "orderd-1024fds")
	script := "#!/bin/sh\nulimit -n 1024\nexec " + filepath.Join(bin, "orderd") + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := harness.StartCluster(harness.ClusterConfig{Certs: certs, Orderd: filepath.Join(bin, "orderd"), Dir: t.TempDir(),
		NodeSetup: func(n *harness.Node) {
			if n.ID == "n1" {
				n.Orderd = wrapper
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	mustLeader(t, c)
	b := startBalancer(t, c, "--max-conns", "2000")

	// An existing client: orders through the balancer all along.
	var placed, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	s, err := mustClient(t, b.Addr).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		for k := int32(1); ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Order(context.Background(), 77, k, wire.Regular); err != nil {
				failed.Add(1)
				t.Logf("order %d: %v", k, err)
			} else {
				placed.Add(1)
			}
		}
	}()

	n1 := c.Node("n1")
	closeNode := flood(t, n1.ClientAddr, 3000)
	closeLB := flood(t, b.Addr, 3000)
	waitFor(t, 10*time.Second, "n1 to run out of file descriptors", func() bool {
		return logCount(t, n1.LogPath, "accept failed; retrying") > 0
	})
	if _, err := wire.Dial(context.Background(), b.Addr, wire.DialOptions{Timeout: 2 * time.Second, TLS: certs.Admin()}); err == nil {
		t.Fatal("the balancer took a connection past --max-conns 2000")
	}
	time.Sleep(time.Second) // orders go on while both are flooded
	closeNode()
	closeLB()
	for _, addr := range []string{n1.ClientAddr, b.Addr} {
		waitFor(t, 15*time.Second, "new clients accepted at "+addr, func() bool {
			conn, err := wire.Dial(context.Background(), addr, wire.DialOptions{Timeout: time.Second, TLS: certs.Admin()})
			if err != nil {
				return false
			}
			defer conn.Close()
			_, err = conn.Status(context.Background())
			return err == nil
		})
	}
	close(stop)
	<-done
	if failed.Load() > 0 || placed.Load() == 0 {
		t.Fatalf("the existing client placed %d orders and saw %d errors during the floods", placed.Load(), failed.Load())
	}
	if logCount(t, n1.LogPath, "accepting again") == 0 {
		t.Fatal("n1 never said it accepts again")
	}
	t.Logf("%d orders placed during the floods, none failed", placed.Load())
}

// TestDeclaredFramesCostNothing: 2,000 connections each declare a 1 MiB
// frame and send nothing more. The node's memory follows the bytes that
// arrived, not the lengths declared, and the frame timeout closes them.
func TestDeclaredFramesCostNothing(t *testing.T) {
	// One certificate's 2,000 connections: past --max-conns-per-client on
	// purpose, the frames are the point here.
	c := startCluster(t, "--frame-timeout", "2s", "--max-conns-per-client", "4000")
	n := c.Node("n2")
	before := rssBytes(t, n.Pid())
	var conns []net.Conn
	for range 2000 {
		nc := rawDial(t, n.ClientAddr)
		nc.SetDeadline(time.Time{})
		if err := wire.ClientHandshake(nc, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		nc.Write(binary.BigEndian.AppendUint32(nil, 1<<20)) //nolint:errcheck // the declaration, and nothing more
		conns = append(conns, nc)
	}
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	after := rssBytes(t, n.Pid())
	t.Logf("n2 resident memory: %d MiB before, %d MiB with 2,000 declared 1 MiB frames", before>>20, after>>20)
	if after-before > 400<<20 {
		t.Fatalf("2,000 declared frames took %d MiB", (after-before)>>20)
	}
	closed := 0
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		buf := make([]byte, 1024)
		for {
			if _, err := nc.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("a connection with a stalled frame was still open after the frame timeout")
				}
				closed++
				break
			}
		}
	}
	t.Logf("%d of 2,000 closed by the frame timeout", closed)
}

// TestPipeliningWithoutReadingIsBounded: 5,000 customers; 40 connections
// to the balancer each pipeline 500 scans of them (125 kB a reply, 2.5 GB
// if all ran) and read nothing. The balancer's memory stays bounded by its reply
// budget per connection; an existing client goes on; once the greedy
// connections close, the balancer holds none of them.
func TestPipeliningWithoutReadingIsBounded(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	cl := mustClient(t, b.Addr)
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cl.NewSession()
			if err != nil {
				t.Error(err)
				return
			}
			for k := g; k < 5000; k += 50 {
				if _, err := s.Order(context.Background(), int32(k), 1, wire.Regular); err != nil {
					t.Errorf("customer %d: %v", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	before := rssBytes(t, b.Pid())
	openConns := func() uint64 {
		st, err := c.Status(context.Background(), b.Addr)
		if err != nil {
			return 1 << 30
		}
		return statOf(st, "conns_open")
	}
	baseline := openConns()
	var conns []net.Conn
	for range 40 {
		nc := rawDial(t, b.Addr)
		nc.SetDeadline(time.Time{})
		if err := wire.ClientHandshake(nc, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		go func() {
			for i := range 500 {
				if _, err := nc.Write(wire.AppendFrame(nil, uint64(i+1), wire.Scan{Limit: wire.MaxScanLimit, Consistency: wire.Stale})); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)
	during := rssBytes(t, b.Pid())
	if _, err := cl.Order(context.Background(), 2, 1, wire.Regular); err != nil {
		t.Fatalf("another client's order while the greedy ones wait: %v", err)
	}
	t.Logf("balancer RSS %d MB before, %d MB with 40 connections that read nothing", before>>20, during>>20)
	// 40 connections x 1 MiB of replies, each also held decoded and as
	// garbage until the collector runs, plus what the sockets hold.
	if during-before > 250<<20 {
		t.Fatalf("the balancer grew by %d MB for clients that read nothing", (during-before)>>20)
	}
	for _, nc := range conns {
		nc.Close()
	}
	waitFor(t, 15*time.Second, "the balancer to drop the greedy connections", func() bool { return openConns() <= baseline })
}

// TestOrdersWithoutReadingBlockNoOne: the balancer answers orders from the
// goroutine that reads its leader connection (lb/async.go), for every
// client at once. A client that pipelines orders and reads none of the
// answers fills its reply queue and the kernel's buffers; answering it
// must not hold that goroutine, or everyone's orders would wait behind
// it. Other customers order through the balancer meanwhile, without an
// error. (Checked against a build whose answer blocks on a full queue:
// their orders then time out.)
func TestOrdersWithoutReadingBlockNoOne(t *testing.T) {
	c := startCluster(t)
	// A reply budget big enough that the answers, not the budget, fill
	// the client's queue first.
	b := startBalancer(t, c, "--max-reply-bytes", "67108864", "--max-reply-bytes-per-client", "67108864")
	nc := rawDial(t, b.Addr)
	nc.SetDeadline(time.Time{})
	helloOK(t, nc)
	go func() {
		var batch []byte
		for i := range 200_000 {
			// Many customers: a Raft entry carries one order per customer,
			// so orders for one customer only would be slow for that alone.
			batch = wire.AppendFrame(batch, uint64(i+1), wire.Order{CustomerID: 10_000 + int32(i%1000), OrderNumber: int32(i), ClientID: 77, Seq: uint64(i + 1)})
			if len(batch) > 64<<10 {
				if _, err := nc.Write(batch); err != nil {
					return // closed at the end of the test
				}
				batch = batch[:0]
			}
		}
	}()
	defer nc.Close()
	// Its answers pile up until the balancer stops reading it: the
	// balancer's request count stands still (but for these Status calls).
	last, still := uint64(0), 0
	waitFor(t, 60*time.Second, "the client that reads nothing to be stopped", func() bool {
		n := lbStats(t, b.Addr)["requests"]
		if n <= last+1 && n > 1000 {
			still++
		} else {
			still = 0
		}
		last = n
		return still >= 10
	})
	t.Logf("the balancer stopped reading the client after %d of its orders", last)
	o := startOrdering(t, []string{b.Addr}, 4, 50)
	o.finish(t, 30*time.Second, "beside a client that reads nothing")
	if n := o.total(); n != 200 {
		t.Fatalf("%d of 200 orders acknowledged", n)
	}
}

// TestOneCustomerFloodStarvesNoOne: an entry carries one order per
// customer, so orders for one customer go one per entry. Four clients
// flood one customer on connections of their own to the leader (reading
// their answers, a thousand orders in flight each); the leader must not
// make everyone else wait out that queue: four customers ordering beside
// the flood get every order acknowledged, without an error. Before the
// proposer packed fairly their orders waited behind the flood, timed out,
// were resent to the back of it, and failed.
func TestOneCustomerFloodStarvesNoOne(t *testing.T) {
	c := startCluster(t)
	ordersBesideFlood(t, mustLeader(t, c).ClientAddr, 60*time.Second, "beside a one-customer flood")
}

// TestOneCustomerFloodThroughBalancerStarvesNoOne: the same flood through
// the balancer, whose one connection to the leader carries every client's
// orders, and which the leader reads at most --max-inflight requests of at
// a time. The balancer shares that window among its client connections,
// turn by turn (lb/share.go); without that the flood filled it and every
// other order queued behind thousands of the flood's, and timed out.
func TestOneCustomerFloodThroughBalancerStarvesNoOne(t *testing.T) {
	c := startCluster(t)
	ordersBesideFlood(t, startBalancer(t, c).Addr, 20*time.Second, "beside a one-customer flood through the balancer")
}

// ordersBesideFlood floods customer 9999 through addr from four
// connections; then four other customers place 50 orders each through
// addr, which must all be acknowledged within.
func ordersBesideFlood(t *testing.T, addr string, within time.Duration, beside string) {
	t.Helper()
	floodOneCustomer(t, addr, 4, 100_000)
	start := time.Now()
	o := startOrdering(t, []string{addr}, 4, 50)
	o.finish(t, within, beside)
	t.Logf("200 orders of 4 customers in %v %s", time.Since(start).Round(time.Millisecond), beside)
}

// floodOneCustomer opens conns connections to addr, each with a client id
// of its own, and pipelines perConn orders for customer 9999 on each
// (reading and dropping the answers); it returns after two seconds, for
// the flood to fill the queues in its way. The test's end closes them.
func floodOneCustomer(t *testing.T, addr string, conns, perConn int) {
	t.Helper()
	for k := range conns {
		nc := rawDial(t, addr)
		nc.SetDeadline(time.Time{})
		helloOK(t, nc)
		t.Cleanup(func() { nc.Close() })
		go io.Copy(io.Discard, nc) //nolint:errcheck // the flood reads its answers, and ends when closed
		go func() {
			var batch []byte
			for i := range perConn {
				batch = wire.AppendFrame(batch, uint64(i+1), wire.Order{CustomerID: 9999, OrderNumber: int32(i), ClientID: uint64(70 + k), Seq: uint64(i + 1)})
				if len(batch) > 4<<10 || i == perConn-1 {
					if _, err := nc.Write(batch); err != nil {
						return // closed at the end of the test
					}
					batch = batch[:0]
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
}

// TestSeedPortTakesTurnsBesideManyConnections: the balancer's share of
// the leader connection goes by client, then by connection (lb/share.go).
// A client floods customer 9999 from 512 connections of one certificate;
// four customers of the seed's port (a client of its own there) order
// beside it, and each of their orders waits for about one turn, not for a
// turn of each of the 512 connections, each of which frees its slot only
// when its order's Raft entry is applied (by connection alone 200 of their
// orders took 7.7 s; by client 0.4 s).
func TestSeedPortTakesTurnsBesideManyConnections(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c, "--max-conns-per-client", "1024") // 512 of one certificate: the turns are the point

	floodOneCustomer(t, b.Addr, 512, 100)
	start := time.Now()
	errs := make(chan error, 4)
	for k := range 4 {
		nc := plainDial(t, b.LegacyAddr)
		nc.SetDeadline(time.Now().Add(8 * time.Second)) // by connection alone: some 15 s
		go func() {
			errs <- seedOrders(nc, int32(100+k), 100)
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("seed port beside 512 flooding connections (8 s for 100 orders each): %v", err)
		}
	}
	t.Logf("400 orders of 4 seed-port customers in %v beside 512 flooding connections", time.Since(start).Round(time.Millisecond))
}

// seedOrders places orders 1..n for customer on a seed-protocol
// connection, one at a time, and checks each answer.
func seedOrders(nc net.Conn, customer int32, n int32) error {
	answer := make([]byte, 20)
	for k := int32(1); k <= n; k++ {
		req := binary.BigEndian.AppendUint32(nil, uint32(customer))
		req = binary.BigEndian.AppendUint32(req, uint32(k))
		req = binary.BigEndian.AppendUint32(req, 0)
		if _, err := nc.Write(req); err != nil {
			return fmt.Errorf("customer %d order %d: %w", customer, k, err)
		}
		if _, err := io.ReadFull(nc, answer); err != nil {
			return fmt.Errorf("customer %d order %d: %w", customer, k, err)
		}
		if got := int32(binary.BigEndian.Uint32(answer)); got != customer {
			return fmt.Errorf("customer %d order %d: answered for customer %d (-1: failed)", customer, k, got)
		}
	}
	return nil
}

// fdCount is the number of a process's open file descriptors.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// metricValue is one gauge or counter of a side port's /metrics.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	m := metricsOf(t, addr)[name]
	if m == nil || len(m.Metric) == 0 {
		t.Fatalf("no metric %s at %s", name, addr)
	}
	if g := m.Metric[0].GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.Metric[0].GetCounter().GetValue()
}

// TestSidePortFloodWithoutCertificates: 19,000 connections to the
// leader's HTTP side port without any certificate (a hundred of them
// keep-alive after a GET /livez, the rest idle TCP). The side port keeps
// at most --http-max-conns-per-source of one address and closes idle ones
// without a certificate within seconds: the leader keeps its file
// descriptors, its client port and its leadership, orders go on without
// an error, its RSS stays under 512 MiB, and once the flood has drained
// a client with a certificate reads /metrics.
func TestSidePortFloodWithoutCertificates(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	leader := mustLeader(t, c)
	load := startOrderLoad(mustClient(t, c.Addrs()...), 5)
	defer load.cancel()

	host, _, _ := net.SplitHostPort(leader.HTTPAddr)
	anon := certs.Admin()(host)
	anon.Certificates = nil
	var kept []net.Conn
	for i := range 19000 {
		conn, err := net.DialTimeout("tcp", leader.HTTPAddr, time.Second)
		if err != nil {
			continue
		}
		if i < 100 { // TLS without a certificate, one GET /livez, then idle
			tc := tls.Client(conn, anon)
			tc.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck // a failed deadline fails the write
			if _, err := io.WriteString(tc, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
				io.ReadAll(io.LimitReader(tc, 64)) //nolint:errcheck // the answer's start is enough
			}
			conn = tc
		}
		kept = append(kept, conn)
	}
	defer func() {
		for _, conn := range kept {
			conn.Close()
		}
	}()
	t.Logf("flood: %d connections made", len(kept))
	rss, fds := rssBytes(t, leader.Pid()), fdCount(t, leader.Pid())
	time.Sleep(7 * time.Second) // past the handshake timeout and the idle bound of anonymous connections
	// What the leader holds, not what the kernel's accept queue or the
	// test's side holds: its side port's open connections and its files.
	if n := metricValue(t, leader.HTTPAddr, "orderly_http_conns"); n > 1 { // 1: this scrape
		t.Errorf("the side port holds %v connections 7 s after the flood", n)
	}
	t.Logf("leader: %d file descriptors at the flood's end, %d after", fds, fdCount(t, leader.Pid()))
	if fds > 2000 {
		t.Errorf("the leader had %d file descriptors open under the flood", fds)
	}
	rss = max(rss, rssBytes(t, leader.Pid()))
	if rss > 512<<20 {
		t.Errorf("the leader's RSS reached %d MiB under the flood", rss>>20)
	}
	if now := mustLeader(t, c); now.ID != leader.ID {
		t.Errorf("leadership moved from %s to %s during the flood", leader.ID, now.ID)
	}
	if code, body := httpsGet(t, leader.HTTPAddr, "/metrics", "reader"); code != http.StatusOK {
		t.Errorf("/metrics with a certificate after the flood: %d %.200s", code, body)
	}
	t.Logf("orders during the flood: %d; leader RSS at most %d MiB", load.stop(t, "during the flood"), rss>>20)
}

// TestOneClientCannotTakeEveryConnection: one reader certificate opens
// 400 connections to a balancer that takes 300 (--max-conns): it gets
// --max-conns-per-client (256) and the rest are told "busy" in the
// orderly protocol, inside TLS; a writer's orders go on, on a new
// connection. Once the port is full, a refused TLS client reads "busy"
// too, not plaintext.
func TestOneClientCannotTakeEveryConnection(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c, "--max-conns", "300")
	dial := func(name string) (*wire.Conn, error) {
		tlsFor, err := certs.Client(name)
		if err != nil {
			t.Fatal(err)
		}
		return wire.Dial(context.Background(), b.Addr, wire.DialOptions{TLS: tlsFor, Timeout: 5 * time.Second})
	}
	var held []*wire.Conn
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	busy := 0
	for range 400 {
		conn, err := dial("reader")
		switch {
		case err == nil:
			held = append(held, conn)
		case errors.Is(err, wire.ErrServerBusy):
			busy++
		default:
			t.Fatalf("a refused connection of the reader: %v, want the orderly busy answer", err)
		}
	}
	if len(held) != 256 || busy != 144 {
		t.Fatalf("the reader holds %d connections, %d were refused busy; want 256 and 144", len(held), busy)
	}
	w := clientAs(t, "writer", b.Addr)
	for k := int32(1); k <= 20; k++ {
		if _, err := w.Order(context.Background(), 9, k, wire.Regular); err != nil {
			t.Fatalf("a writer's order beside the reader's connections: %v", err)
		}
	}
	for range 60 { // the writer fills the port up to --max-conns
		conn, err := dial("writer")
		if err != nil {
			if !errors.Is(err, wire.ErrServerBusy) {
				t.Fatalf("a connection refused at --max-conns: %v, want the orderly busy answer", err)
			}
			break
		}
		held = append(held, conn)
	}
	if _, err := dial("orderctl"); !errors.Is(err, wire.ErrServerBusy) {
		t.Fatalf("a TLS client past --max-conns: %v, want the orderly busy answer", err)
	}
}

// TestNeverReadingClientIsBoundedPerClient: one reader certificate opens
// 200 connections to the balancer and 200 to a node, and each pipelines
// 20,000 gets without reading an answer. Per connection each was bounded
// already (1,024 requests, 1 MiB of replies); 200 of them took the
// balancer to 1.75 GB and a node to 1.56 GB. Bounded per client across
// its connections (--max-inflight-per-client, --max-reply-bytes-per-client)
// both stay under 512 MiB RSS, and a writer's orders through the balancer
// go on.
func TestNeverReadingClientIsBoundedPerClient(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c)
	node := c.Node("n2")
	w := clientAs(t, "writer", b.Addr)
	if _, err := w.Order(context.Background(), 3, 1, wire.Regular); err != nil {
		t.Fatal(err)
	}
	readerTLS, err := certs.Client("reader")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for _, addr := range []string{b.Addr, node.ClientAddr} {
		host, _, _ := net.SplitHostPort(addr)
		for range 200 {
			tc := tls.Client(plainDial(t, addr), readerTLS(host))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			tc.SetDeadline(time.Time{}) //nolint:errcheck // no deadline
			helloOK(t, tc)
			conns = append(conns, tc)
			go func() {
				var batch []byte
				for i := range 20000 {
					batch = wire.AppendFrame(batch, uint64(i+1), wire.Get{CustomerID: 3, Consistency: wire.Stale})
					if len(batch) > 32<<10 {
						if _, err := tc.Write(batch); err != nil {
							return
						}
						batch = batch[:0]
					}
				}
			}()
		}
	}
	peak := map[string]int64{}
	for k := int32(2); k <= 40; k++ {
		if _, err := w.Order(context.Background(), 3, k, wire.Regular); err != nil {
			t.Fatalf("a writer's order beside the reader that never reads: %v", err)
		}
		peak["balancer"] = max(peak["balancer"], rssBytes(t, b.Pid()))
		peak["node"] = max(peak["node"], rssBytes(t, node.Pid()))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("peak RSS with 200 never-reading connections each: balancer %d MiB, node %d MiB", peak["balancer"]>>20, peak["node"]>>20)
	for who, rss := range peak {
		if rss > 512<<20 {
			t.Errorf("the %s reached %d MiB RSS", who, rss>>20)
		}
	}
}

// TestAlmostWholeFramesAreBounded: 600 connections each declare a 1 MiB
// frame and send all of it but its last byte (600 MB in all; 2,000 of
// them took a node from 0.97 to 2.78 GB). The node's frame memory budget
// (--max-frame-memory, 64 MiB) holds what arrived; past it their
// readers wait, and --frame-timeout closes them. The node stays under 512
// MiB RSS, and orders go on.
func TestAlmostWholeFramesAreBounded(t *testing.T) {
	c := startCluster(t, "--frame-timeout", "3s", "--max-conns-per-client", "4000")
	n := c.Node("n2")
	cl := mustClient(t, c.Addrs()...)
	body := make([]byte, 1<<20-1)
	var conns []net.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	var writers sync.WaitGroup
	for range 600 {
		nc := rawDial(t, n.ClientAddr)
		nc.SetDeadline(time.Time{})
		if err := wire.ClientHandshake(nc, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		writers.Add(1)
		go func() {
			defer writers.Done()
			nc.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a failed deadline fails the write
			nc.Write(binary.BigEndian.AppendUint32(nil, 1<<20))   //nolint:errcheck // the node may stop reading, and close
			nc.Write(body)                                        //nolint:errcheck // as above
		}()
	}
	var peak int64
	for k := int32(1); k <= 30; k++ {
		if _, err := cl.Order(context.Background(), 8, k, wire.Regular); err != nil {
			t.Fatalf("an order beside the frames: %v", err)
		}
		peak = max(peak, rssBytes(t, n.Pid()))
		time.Sleep(100 * time.Millisecond)
	}
	writers.Wait()
	peak = max(peak, rssBytes(t, n.Pid()))
	t.Logf("n2 peak RSS with 600 almost whole 1 MiB frames: %d MiB", peak>>20)
	if peak > 512<<20 {
		t.Fatalf("n2 reached %d MiB RSS", peak>>20)
	}
}

// TestSeedPortSourceCannotTakeEveryConnection: the seed's port has no
// identities, so a source address counts as one client there
// (--max-conns-per-client connections of it). 300 idle connections from
// 127.0.0.2 to a balancer that takes 300 (--max-conns) keep 256; a seed
// client from 127.0.0.1 still orders. (Per listener alone, the 300 took
// the port.)
func TestSeedPortSourceCannotTakeEveryConnection(t *testing.T) {
	c := startCluster(t)
	b := startBalancer(t, c, "--max-conns", "300")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
	var held []net.Conn
	defer func() {
		for _, nc := range held {
			nc.Close()
		}
	}()
	for range 300 {
		nc, err := d.Dial("tcp", b.LegacyAddr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, nc)
	}
	time.Sleep(200 * time.Millisecond) // for the balancer to take or close them all
	open := 0
	for _, nc := range held {
		nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) //nolint:errcheck // a failed deadline fails the read
		if _, err := nc.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open++
			}
		}
	}
	if open != 256 {
		t.Errorf("127.0.0.2 holds %d seed-port connections, want 256", open)
	}
	if err := seedOrders(plainDial(t, b.LegacyAddr), 15, 5); err != nil {
		t.Fatalf("a seed client beside another source's 300 connections: %v", err)
	}
}
