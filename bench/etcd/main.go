// Command etcd-driver is the etcd side of `make bench-etcd`: the same load
// shapes as orderly's loadgen (C clients, one request in flight each, for
// a fixed time, latencies in an HDR histogram), against a 3-member etcd on
// loopback, with etcd's official Go client. It is a module of its own so
// that orderly does not depend on etcd.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

type result struct {
	Op         string  `json:"op"`
	Clients    int     `json:"customers"`
	ElapsedSec float64 `json:"elapsed_s"`
	Ops        int64   `json:"ops"`
	Errors     int64   `json:"errors"`
	Throughput float64 `json:"ops_per_s"`
	Latency    summary `json:"latency"`
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793", "etcd client URLs")
	clients := flag.Int("clients", 16, "concurrent clients, one request in flight each")
	dur := flag.Duration("duration", 10*time.Second, "length of the run")
	op := flag.String("op", "put", "put, get (linearizable) or get-serializable")
	conns := flag.Int("conns", 16, "etcd clients (gRPC connections) shared by the workers, as etcd's own benchmark tool does")
	out := flag.String("json", "", "write the result here")
	leaderOnly := flag.Bool("leader-only", false, "send to the leader only (as orderly's \"via leader\" rows do), not spread over the members (etcd's client default, which pays a forward on followers)")
	flag.Parse()
	eps := strings.Split(*endpoints, ",")
	if *leaderOnly {
		leader, err := findLeader(eps)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd-driver:", err)
			os.Exit(1)
		}
		eps = []string{leader}
	}
	res, err := run(eps, *clients, min(*conns, *clients), *dur, *op)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-driver:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Printf("etcd %s c=%d: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, errors %d\n", *op, *clients, res.Throughput, res.Latency.P50, res.Latency.P99, res.Errors)
}

func run(endpoints []string, clients, conns int, dur time.Duration, op string) (*result, error) {
	var cls []*clientv3.Client
	defer func() {
		for _, c := range cls {
			c.Close()
		}
	}()
	for range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		cls = append(cls, c)
	}
	// Reads need the keys: one put per worker's key first.
	for i := range clients {
		if _, err := cls[i%conns].Put(context.Background(), key(i), "0"); err != nil {
			return nil, fmt.Errorf("prefill: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	hs := make([]*hdrhistogram.Histogram, clients)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		c := cls[i%conns]
		hs[i] = hdrhistogram.New(1, int64(2*time.Minute/time.Microsecond), 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				var err error
				switch op {
				case "put":
					_, err = c.Put(ctx, key(i), fmt.Sprint(n))
				case "get":
					_, err = c.Get(ctx, key(i))
				case "get-serializable":
					_, err = c.Get(ctx, key(i), clientv3.WithSerializable())
				default:
					err = fmt.Errorf("unknown op %q", op)
				}
				if err != nil {
					// gRPC may fire the run's deadline a moment before ctx
					// reports it: an error in the last 100ms is the end of
					// the run, not an etcd error.
					if dl, _ := ctx.Deadline(); ctx.Err() == nil && time.Until(dl) > 100*time.Millisecond {
						errs.Add(1)
					}
					continue
				}
				hs[i].RecordValue(max(time.Since(t0).Microseconds(), 1)) //nolint:errcheck // in range
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := hdrhistogram.New(1, int64(2*time.Minute/time.Microsecond), 3)
	for _, h := range hs {
		all.Merge(h)
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &result{Op: op, Clients: clients, ElapsedSec: elapsed.Seconds(), Ops: all.TotalCount(), Errors: errs.Load(),
		Throughput: float64(all.TotalCount()) / elapsed.Seconds(),
		Latency: summary{Count: all.TotalCount(), Mean: all.Mean() / 1000, P50: ms(all.ValueAtQuantile(50)), P90: ms(all.ValueAtQuantile(90)),
			P99: ms(all.ValueAtQuantile(99)), P999: ms(all.ValueAtQuantile(99.9)), Max: ms(all.Max())}}, nil
}

// findLeader asks each member's status and returns the leader's endpoint.
func findLeader(endpoints []string) (string, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	for _, ep := range endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return ep, nil
		}
	}
	return "", fmt.Errorf("no leader among %v", endpoints)
}

func key(i int) string { return fmt.Sprintf("customer/%d", i) }
