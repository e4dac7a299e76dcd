package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderly/shard"
	"orderly/wire"
)

// ack is one acknowledged order: its customer's count and order number
// after it, at its index.
type ack struct {
	index, count uint64
	number       int32
}

// TestBackupRestore: a backup taken through the balancer while orders go
// on, restored into a fresh 3-node cluster (new ports, new data dirs):
// every record there equals the source's at the backup's index. A reader
// may not take one; a truncated file and a flipped byte are refused by
// inspect and by orderd --restore. The restored cluster takes orders, and
// a node restarted with the same --restore starts on its data.
func TestBackupRestore(t *testing.T) {
	src := startCluster(t)
	lb := startBalancer(t, src)
	// Load: 4 writers, 50 customers each, through the balancer, until
	// stopped; each remembers every acknowledgement.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	acks := make([]map[int32][]ack, 4)
	errs := make(chan error, 4)
	for w := range acks {
		acks[w] = map[int32][]ack{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := mustClient(t, lb.Addr)
			for k := int32(0); ctx.Err() == nil; k++ {
				cust := int32(w*1000) + k%50
				li, err := cl.Order(ctx, cust, k, wire.LaptopType(k%2))
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				acks[w][cust] = append(acks[w][cust], ack{index: li.Index, count: li.OrderCount, number: k})
			}
		}()
	}
	time.Sleep(time.Second)
	file := filepath.Join(t.TempDir(), "orders.backup")
	if out, err := orderctl(t, []string{lb.Addr}, "--as", "reader", "snapshot", "save", file); err == nil || !strings.Contains(out, "PermissionDenied") {
		t.Fatalf("a reader took a backup: %v\n%s", err, out)
	}
	// The balancer's certificate forwards writers at most (make run's
	// and the harness's): an admin takes backups from the nodes.
	if out, err := orderctl(t, []string{lb.Addr}, "snapshot", "save", file); err == nil || !strings.Contains(out, "forwards role writer at most") {
		t.Fatalf("an admin's backup through a writer-bound balancer: %v\n%s", err, out)
	}
	out := mustOrderctl(t, src.Addrs(), "--json", "snapshot", "save", file)
	var saved struct {
		Index uint64 `json:"index"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &saved); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond) // orders go on after the backup too
	stop()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("an order failed during the backup: %v", err)
	default:
	}
	// The source's state at the backup's index, from the acknowledgements.
	want := map[int32]ack{}
	after := 0
	for _, m := range acks {
		for cust, as := range m {
			for _, a := range as {
				if a.index <= saved.Index {
					want[cust] = a
				} else {
					after++
				}
			}
		}
	}
	if len(want) == 0 || after == 0 {
		t.Fatalf("backup at index %d: %d customers before it, %d orders after it; want both", saved.Index, len(want), after)
	}
	var orders uint64
	for _, a := range want {
		orders += a.count
	}
	t.Logf("backup at index %d, %d bytes: %d customers, %d orders; %d orders after it", saved.Index, saved.Bytes, len(want), orders, after)

	var inspected struct {
		Index     uint64 `json:"index"`
		Customers int    `json:"customers"`
		Orders    uint64 `json:"orders"`
	}
	if err := json.Unmarshal([]byte(mustOrderctl(t, nil, "--json", "snapshot", "inspect", file)), &inspected); err != nil {
		t.Fatal(err)
	}
	if inspected.Index != saved.Index || inspected.Customers != len(want) || inspected.Orders != orders {
		t.Fatalf("inspect: %+v, want index %d, %d customers, %d orders", inspected, saved.Index, len(want), orders)
	}

	// Damaged copies are refused, by inspect and by orderd --restore.
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), whole...)
	flipped[len(flipped)/2] ^= 1
	// A crafted copy verifies (a SHA-256 is a checksum, anyone can make
	// one) but claims index 2^64-1, which made every start of the restored
	// node fail.
	crafted := append([]byte(nil), whole...)
	binary.BigEndian.PutUint64(crafted[len("ORDERLY-BACKUP\x00\x01")+2:], 1<<64-1)
	sum := sha256.Sum256(crafted[:len(crafted)-sha256.Size])
	copy(crafted[len(crafted)-sha256.Size:], sum[:])
	for name, b := range map[string][]byte{"truncated": whole[:len(whole)*2/3], "flipped": flipped, "crafted": crafted} {
		bad := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := orderctl(t, nil, "snapshot", "inspect", bad); err == nil || !strings.Contains(out, "not a whole, unaltered orderly backup") {
			t.Fatalf("inspect of a %s backup: %v\n%s", name, err, out)
		}
		dir := t.TempDir()
		cmd := exec.Command(filepath.Join(bin, "orderd"), append([]string{"--id", "n1", "--data-dir", dir, "--peers", "n1=127.0.0.1:1",
			"--restore", bad}, certs.Flags("n1")...)...)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not a whole, unaltered orderly backup") {
			t.Fatalf("orderd --restore of a %s backup: %v\n%s", name, err, out)
		}
		for _, log := range []string{"raft.db", "wal"} {
			if _, err := os.Stat(filepath.Join(dir, log)); err == nil {
				t.Fatalf("orderd --restore of a %s backup wrote a Raft log (%s)", name, log)
			}
		}
	}

	// A fresh cluster from the backup.
	dst := startCluster(t, "--restore", file)
	cl := mustClient(t, dst.Addrs()...)
	checkRestored := func() {
		t.Helper()
		for cust, a := range want {
			r := mustGet(t, cl, cust, wire.Linearizable)
			if r.OrderCount != a.count || r.LastOrder != a.number {
				t.Fatalf("restored customer %d: %d orders, last %d; the source had %d, last %d at index %d",
					cust, r.OrderCount, r.LastOrder, a.count, a.number, saved.Index)
			}
		}
		n := 0
		for from := int32(0); from >= 0; {
			recs, err := cl.Scan(context.Background(), from, 1000, wire.Linearizable)
			if err != nil {
				t.Fatal(err)
			}
			n += len(recs.Records)
			from = recs.Next
		}
		if n != len(want) {
			t.Fatalf("the restored cluster has %d customers, the source had %d at the backup", n, len(want))
		}
	}
	checkRestored()
	leader := mustLeader(t, dst)
	if li, err := cl.Order(context.Background(), 5000, 1, wire.Regular); err != nil || li.Index <= saved.Index {
		t.Fatalf("order on the restored cluster: %+v %v", li, err)
	}
	want[5000] = ack{count: 1, number: 1}
	// Restarted with the same flags, a node starts on its restored data.
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := dst.Start(leader); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := leader.WaitUp(wctx); err != nil {
		t.Fatal(err)
	}
	checkRestored()
	// Nothing sent this cluster's client to the old one (the addresses
	// the old nodes published are not restored: NotLeader hints once led
	// a write there, and the client then waited for the old cluster's
	// index here).
	st, err := dst.Status(context.Background(), mustLeader(t, dst).ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if seen := cl.SeenIndex(); seen > st.LastIndex {
		t.Fatalf("the client has seen index %d, past the restored cluster's last %d: it was sent to the old cluster", seen, st.LastIndex)
	}
}

// TestShardedBackupRestore: the backup of a sharded cluster, taken from
// its nodes while orders go on, is one file holding every group's
// backup (the meta group's, then each shard's from its leader).
// Restored into a fresh cluster that places each shard on two of its
// three nodes, every customer's record equals the source's at its
// shard's index in the file; the cluster takes orders in every shard,
// and its nodes publish a new shard map. A flipped byte is refused
// before anything is written.
func TestShardedBackupRestore(t *testing.T) {
	src := startCluster(t, "--shards", "3")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	acks := make([]map[int32][]ack, 3)
	errs := make(chan error, len(acks))
	for w := range acks {
		acks[w] = map[int32][]ack{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := mustClient(t, src.Addrs()...)
			for k := int32(0); ctx.Err() == nil; k++ {
				cust := int32(w*1000) + k%40
				li, err := cl.Order(ctx, cust, k, wire.LaptopType(k%2))
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				acks[w][cust] = append(acks[w][cust], ack{index: li.Index, count: li.OrderCount, number: k})
			}
		}()
	}
	time.Sleep(time.Second)
	file := filepath.Join(t.TempDir(), "orders.bundle")
	var saved struct {
		Shards int `json:"shards"`
	}
	if err := json.Unmarshal([]byte(mustOrderctl(t, src.Addrs(), "--json", "snapshot", "save", file)), &saved); err != nil || saved.Shards != 3 {
		t.Fatalf("snapshot save of a sharded cluster: %+v %v", saved, err)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("an order failed during the backup: %v", err)
	default:
	}
	var inspected struct {
		Meta   struct{ Index uint64 }
		Shards []struct {
			Index     uint64
			Customers int
			Orders    uint64
		}
	}
	if err := json.Unmarshal([]byte(mustOrderctl(t, nil, "--json", "snapshot", "inspect", file)), &inspected); err != nil || len(inspected.Shards) != 3 {
		t.Fatalf("inspect: %+v %v", inspected, err)
	}
	// Each customer's state at its shard's index in the file.
	want := map[int32]ack{}
	after := 0
	for _, m := range acks {
		for cust, as := range m {
			for _, a := range as {
				if a.index <= inspected.Shards[shard.Of(cust, 3)].Index {
					want[cust] = a
				} else {
					after++
				}
			}
		}
	}
	perShard := make([]int, 3)
	for cust := range want {
		perShard[shard.Of(cust, 3)]++
	}
	for i, s := range inspected.Shards {
		if s.Customers != perShard[i] {
			t.Fatalf("shard %d's backup holds %d customers, the acknowledgements say %d", i, s.Customers, perShard[i])
		}
	}
	if len(want) == 0 || after == 0 {
		t.Fatalf("%d customers before the backup, %d orders after it; want both", len(want), after)
	}

	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), whole...)
	flipped[len(flipped)*3/4] ^= 1
	bad := filepath.Join(t.TempDir(), "flipped")
	if err := os.WriteFile(bad, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "orderd"), append([]string{"--id", "n1", "--data-dir", dir, "--peers", "n1=127.0.0.1:1",
		"--restore", bad}, certs.Flags("n1")...)...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not a whole, unaltered orderly backup") {
		t.Fatalf("orderd --restore of a flipped bundle: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("orderd --restore of a flipped bundle wrote %d entries into the data dir", len(entries))
	}

	dst := startCluster(t, "--restore", file, "--replicas", "2")
	cl := mustClient(t, dst.Addrs()...)
	for cust, a := range want {
		r := mustGet(t, cl, cust, wire.Linearizable)
		if r.OrderCount != a.count || r.LastOrder != a.number {
			t.Fatalf("restored customer %d (shard %d): %d orders, last %d; the source had %d, last %d",
				cust, shard.Of(cust, 3), r.OrderCount, r.LastOrder, a.count, a.number)
		}
	}
	for id := range uint32(3) {
		cust := int32(5000)
		for shard.Of(cust, 3) != id {
			cust++
		}
		if li, err := cl.Order(context.Background(), cust, 1, wire.Regular); err != nil || li.Index <= inspected.Shards[id].Index {
			t.Fatalf("order in shard %d of the restored cluster: %+v %v", id, li, err)
		}
	}
	var l shardList
	waitFor(t, 30*time.Second, "the restored cluster's shard map", func() bool {
		l = shardsOf(t, dst.Addrs())
		for _, s := range l.Shards {
			if s.Leader == "" || len(s.Replicas) != 2 {
				return false
			}
		}
		return len(l.Shards) == 3
	})
}
