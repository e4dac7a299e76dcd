// Command groups measures what a Raft group costs a node: three nodes in
// one process, one Raft port each (peernet, plaintext), each hosting K
// groups (package group, on raft-wal in a temporary directory, a log per
// group as orderd runs its one, or with --store shared on one sharedlog
// store per node), for each K given. It reports the process's CPU while
// every group idles (heartbeats only) and the orders per second it
// places with writers spread over every group's leader (one log, so one
// fsync stream, per group).
//
//	go run ./bench/groups --groups 1,4,16,64 --idle 10s --load 10s [--store shared]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"orderly/bench/groups/sharedlog"
	"orderly/fsm"
	"orderly/group"
	"orderly/internal/procio"
	"orderly/peernet"
)

const nodes = 3

func main() {
	counts := flag.String("groups", "1,4,16,64", "groups per node, one run each")
	idle := flag.Duration("idle", 10*time.Second, "how long to measure every group idle")
	load := flag.Duration("load", 10*time.Second, "how long to measure writes (0: skip)")
	writers := flag.Int("writers", 64, "writers in all, spread over the groups")
	store := flag.String("store", "wal", "wal: a raft-wal log per group; shared: one sharedlog store per node for all its groups")
	flag.Parse()
	if *store != "wal" && *store != "shared" {
		fmt.Fprintf(os.Stderr, "--store %q: want wal or shared\n", *store)
		os.Exit(2)
	}
	fmt.Printf("| groups (3 replicas each, one per node) | idle CPU, 3 nodes (%% of one core) | idle CPU per group | goroutines | orders/s, %d writers | write syscalls/s (disk and network) |\n|---|---|---|---|---|---|\n", *writers)
	for _, f := range strings.Split(*counts, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			fmt.Fprintf(os.Stderr, "bad group count %q\n", f)
			os.Exit(2)
		}
		if err := run(k, *idle, *load, *writers, *store == "shared"); err != nil {
			fmt.Fprintf(os.Stderr, "%d groups: %v\n", k, err)
			os.Exit(1)
		}
	}
}

// replica is one group's replica on one node.
type replica struct {
	g     *group.Group
	store io.Closer // its own log, or nil on a shared one
}

func run(k int, idle, load time.Duration, writers int, shared bool) error {
	dir, err := os.MkdirTemp("", "orderly-groups-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr})
	routers := make([]*peernet.Groups, nodes)
	ports := make([]*peernet.Port, nodes)
	for i := range nodes {
		routers[i] = peernet.NewGroups(log)
		p, err := peernet.Listen("127.0.0.1:0", nil, 0, 5*time.Second, routers[i].Deliver, func(string, net.Conn) {}, log)
		if err != nil {
			return err
		}
		ports[i] = p
		defer p.Close()
	}
	dbs := make([]*sharedlog.DB, nodes)
	if shared {
		for i := range nodes {
			p := filepath.Join(dir, fmt.Sprintf("n%d", i+1))
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			db, err := sharedlog.Open(filepath.Join(p, "shared.db"))
			if err != nil {
				return err
			}
			dbs[i] = db
			defer db.Close() // after the groups' Close, deferred below
		}
	}
	var servers []raft.Server
	for i := range nodes {
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: raft.ServerAddress(ports[i].Addr()), Suffrage: raft.Voter})
	}
	conf := raft.Configuration{Servers: servers}
	groups := make([][]replica, k)
	defer func() {
		for _, reps := range groups {
			for _, r := range reps {
				r.g.Close()
				if r.store != nil {
					r.store.Close()
				}
			}
		}
	}()
	for gi := range k {
		id := peernet.GroupID(gi)
		for i := range nodes {
			rd := filepath.Join(dir, fmt.Sprintf("n%d", i+1), fmt.Sprintf("g%d", gi))
			if err := os.MkdirAll(rd, 0o755); err != nil {
				return err
			}
			var logs logStore
			var own io.Closer
			if shared {
				logs = dbs[i].Group(uint32(gi))
			} else {
				w, err := wal.Open(rd, wal.WithSegmentSize(4<<20))
				if err != nil {
					return fmt.Errorf("open wal %s: %w", rd, err)
				}
				logs, own = w, w
			}
			closeOwn := func() {
				if own != nil {
					own.Close()
				}
			}
			snaps, err := raft.NewFileSnapshotStoreWithLogger(rd, 2, log)
			if err != nil {
				closeOwn()
				return err
			}
			adv, _ := net.ResolveTCPAddr("tcp", ports[i].Addr())
			trans := peernet.NewTransport(peernet.NewDialer(nil, adv, id),
				peernet.Rules{Config: func() (raft.Configuration, error) { return conf, nil }}, log)
			routers[i].Add(id, trans)
			g, err := group.New(group.Config{ID: string(servers[i].ID), Logger: log, Transport: trans,
				Stores:         group.Stores{Logs: logs, Stable: logs, Snapshots: snaps},
				FSM:            fsm.Options{Logger: log},
				RequestTimeout: 5 * time.Second,
				Timing:         group.Timing{SnapshotThreshold: 1 << 20}})
			if err != nil {
				closeOwn()
				return err
			}
			groups[gi] = append(groups[gi], replica{g: g, store: own})
		}
		if err := groups[gi][0].g.Raft().BootstrapCluster(conf).Error(); err != nil {
			return fmt.Errorf("bootstrap group %d: %w", gi, err)
		}
	}
	leaders := make([]*group.Group, k)
	deadline := time.Now().Add(time.Minute)
	for gi := 0; gi < k; {
		for _, r := range groups[gi] {
			if r.g.IsReadyLeader() {
				leaders[gi] = r.g
			}
		}
		if leaders[gi] != nil {
			gi++
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %d has no ready leader after a minute", gi)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // elections settle
	cpu0 := cpuTime()
	time.Sleep(idle)
	idleCPU := (cpuTime() - cpu0).Seconds() / idle.Seconds()
	gr := runtime.NumGoroutine()

	ordersPerSec, fsyncsPerSec := 0.0, 0.0
	if load > 0 {
		ordersPerSec, fsyncsPerSec = write(leaders, load, writers)
	}
	fmt.Printf("| %d | %.1f %% | %.2f %% | %d | %.0f | %.0f |\n", k, idleCPU*100, idleCPU*100/float64(k), gr, ordersPerSec, fsyncsPerSec)
	return nil
}

// logStore is what a group's stores are.
type logStore interface {
	raft.LogStore
	raft.StableStore
}

// write runs writers spread over the groups' leaders for d.
func write(leaders []*group.Group, d time.Duration, writers int) (ordersPerSec, writeCallsPerSec float64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var placed atomic.Int64
	var wg sync.WaitGroup
	w0 := writeSyscalls()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := leaders[w%len(leaders)]
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				o := fsm.PlaceOrder{CustomerID: int32(w), OrderNumber: int32(seq), ExpertID: -1, ClientID: uint64(w + 1), Seq: seq}
				if _, err := g.Propose(ctx, o); err == nil {
					placed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(placed.Load()) / d.Seconds(), float64(writeSyscalls()-w0) / d.Seconds()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeSyscalls() int64 {
	_, w, _ := procio.Syscalls()
	return w
}
