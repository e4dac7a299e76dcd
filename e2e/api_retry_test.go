package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"orderly/harness"
	"orderly/pki"
)

// TestAPIIdempotencyKeyAcrossLeaderKill: clients place orders at the
// nodes' API, the leader's first, each with an Idempotency-Key, and
// resend a call whose answer they did not get (a transport error, 5xx)
// with the same key to the next node (a follower forwards it), while the
// leader is SIGKILLed with calls in flight and restarted. Every order is
// applied exactly once; a key sent again answers the first order; a key
// reused for another order is 422.
func TestAPIIdempotencyKeyAcrossLeaderKill(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	leader := mustLeader(t, c)
	addrs := []string{leader.HTTPAddr}
	for _, n := range followersOf(c, leader) {
		addrs = append(addrs, n.HTTPAddr)
	}
	const customers, orders = 4, 400
	var lost atomic.Int64 // calls sent whose answer never came
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, customers)
	firstIndex := make([]uint64, customers)
	for cu := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients := make([]*apiClient, len(addrs))
			for i, a := range addrs {
				clients[i] = newAPIClient(t, a, "writer")
			}
			at := 0
			for n := int32(1); n <= orders; n++ {
				key := fmt.Sprintf("kill-%d-%d", cu, n)
				deadline := time.Now().Add(60 * time.Second)
				for {
					got, err := clients[at].order(int32(cu), n, "regular", key)
					if err == nil && got.Status == http.StatusCreated {
						if n == 1 {
							var li apiLaptop
							got.decode(t, &li)
							firstIndex[cu] = li.Index
						}
						break
					}
					if err == nil && got.Status < 500 && got.Status != http.StatusTooManyRequests {
						errs <- fmt.Errorf("customer %d order %d: %d %s", cu, n, got.Status, got.Body)
						return
					}
					if (err != nil && !errors.Is(err, syscall.ECONNREFUSED)) || (err == nil && got.Status == http.StatusGatewayTimeout) {
						lost.Add(1)
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("customer %d order %d: no answer in 60 s (last: %v)", cu, n, err)
						return
					}
					at = (at + 1) % len(clients)
					time.Sleep(20 * time.Millisecond)
				}
				done.Add(1)
			}
		}()
	}
	for kill := 0; kill < 3 && lost.Load() == 0 && done.Load() < customers*orders*3/4; kill++ {
		time.Sleep(200 * time.Millisecond)
		l := mustLeader(t, c)
		if err := l.Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := c.Start(l); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("calls whose answer was lost, resent with their key: %d", lost.Load())
	if lost.Load() == 0 {
		t.Fatalf("no call was in flight when a leader was killed: the test proved nothing (raise orders)")
	}

	r := newAPIClient(t, addrs[1], "reader")
	w := newAPIClient(t, addrs[1], "writer")
	for cu := range customers {
		var rec apiRecord
		r.must("GET", fmt.Sprintf("/v1/customers/%d", cu), nil, nil).decode(t, &rec)
		if rec.OrderCount != orders || rec.LastOrder != orders {
			t.Errorf("customer %d: %d orders, last %d; want each of %d applied once", cu, rec.OrderCount, rec.LastOrder, orders)
		}
		again, err := w.order(int32(cu), 1, "regular", fmt.Sprintf("kill-%d-1", cu))
		var li apiLaptop
		if err == nil {
			again.decode(t, &li)
		}
		if err != nil || again.Status != http.StatusCreated || li.Index != firstIndex[cu] {
			t.Errorf("customer %d: the first key again: %v %d %s, want 201 at index %d", cu, err, again.Status, again.Body, firstIndex[cu])
		}
		other, err := w.order(int32(cu), 99, "custom", fmt.Sprintf("kill-%d-1", cu))
		if err != nil || other.Status != http.StatusUnprocessableEntity || other.errorCode() != "IdempotencyKeyReused" {
			t.Errorf("customer %d: the first key for another order: %v %d %s, want 422", cu, err, other.Status, other.Body)
		}
	}
	var rec apiRecord
	r.must("GET", "/v1/customers/0", nil, nil).decode(t, &rec)
	if rec.OrderCount != orders {
		t.Errorf("after the key's replays customer 0 has %d orders, want %d", rec.OrderCount, orders)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name, id, data string
}

// watchAPI opens GET /v1/watch and sends its events on the channel until
// ctx ends; the status comes first.
func watchAPI(ctx context.Context, t *testing.T, c *apiClient, query, lastID string) (int, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/watch?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	hc := &http.Client{Transport: c.hc.Transport} // no timeout: a stream
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	out := make(chan sseEvent, 1024)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(out)
		return resp.StatusCode, out
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return http.StatusOK, out
}

// TestAPIWatchResumes: a watcher of the API's feed reads part of it,
// goes away, and resumes with Last-Event-ID: it sees every order once,
// in index order; a position the feed no longer holds is 410 with the
// oldest it does.
func TestAPIWatchResumes(t *testing.T) {
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true, Extra: []string{"--watch-history", "64"}})
	lb := startBalancer(t, c)
	w := newAPIClient(t, lb.HTTPAddr, "writer")
	r := newAPIClient(t, lb.HTTPAddr, "reader")
	place := func(from, to int32) {
		for n := from; n <= to; n++ {
			if got, err := w.order(n%2, n, "regular", ""); err != nil || got.Status != http.StatusCreated {
				t.Fatalf("order %d: %v %d %s", n, err, got.Status, got.Body)
			}
		}
	}
	place(1, 20)
	var start apiRecord
	r.must("GET", "/v1/customers/1", nil, nil).decode(t, &start)
	seen := map[int32]int{}
	var lastIndex uint64
	read := func(events <-chan sseEvent, until func() bool) string {
		lastID := ""
		timeout := time.After(20 * time.Second)
		for !until() {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended early")
				}
				if ev.name == "progress" {
					lastID = ev.id
					continue
				}
				if ev.name != "order" {
					t.Fatalf("event %+v", ev)
				}
				var e struct {
					Index  uint64
					Number int32
				}
				if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
					t.Fatal(err)
				}
				if e.Index < lastIndex {
					t.Fatalf("index %d after %d", e.Index, lastIndex)
				}
				if ev.id != "" { // the last order of an entry
					if id, _ := strconv.ParseUint(ev.id, 10, 64); id != e.Index {
						t.Fatalf("event id %s for index %d", ev.id, e.Index)
					}
					lastID = ev.id
				}
				lastIndex = e.Index
				seen[e.Number]++
			case <-timeout:
				t.Fatalf("20 s without the orders awaited; seen %v", seen)
			}
		}
		return lastID
	}
	ctx, cancel := context.WithCancel(context.Background())
	status, events := watchAPI(ctx, t, r, "from_index=1", "")
	if status != http.StatusOK {
		t.Fatalf("watch: %d", status)
	}
	lastID := read(events, func() bool { return len(seen) >= 10 })
	cancel()
	place(21, 40)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if status, events = watchAPI(ctx, t, r, "", lastID); status != http.StatusOK {
		t.Fatalf("resume: %d", status)
	}
	read(events, func() bool { return len(seen) >= 40 })
	for n := int32(1); n <= 40; n++ {
		if seen[n] != 1 {
			t.Errorf("order %d seen %d times, want once", n, seen[n])
		}
	}
	cancel()

	place(41, 140) // past --watch-history 64: index 1 is gone
	got := r.must("GET", "/v1/watch?from_index=1", nil, nil)
	var e struct {
		Code   string
		Oldest uint64
	}
	got.decode(t, &e)
	if got.Status != http.StatusGone || e.Code != "Compacted" || e.Oldest <= 1 {
		t.Errorf("watch from a compacted index: %d %s, want 410 Compacted with the oldest", got.Status, got.Body)
	}
}

// TestAPIFromPython: a client in Python's standard library alone
// (urllib, ssl) places orders with make run's kind of certificates, sends
// one again with its key, and reads: nothing Go-specific is needed.
func TestAPIFromPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 (make testdeps installs it): %v", err)
	}
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true})
	lb := startBalancer(t, c)
	f := pki.InDir(certs.Dir, "writer")
	out, err := exec.Command(py, filepath.Join("testdata", "api_client.py"), "https://"+lb.HTTPAddr, f.CA, f.Cert, f.Key, "4242").CombinedOutput()
	if err != nil {
		t.Fatalf("api_client.py: %v\n%s", err, out)
	}
	var got struct {
		Indexes       []uint64
		ReplayStatus  int    `json:"replay_status"`
		ReplayIndex   uint64 `json:"replay_index"`
		RecordStatus  int    `json:"record_status"`
		OrderCount    int    `json:"order_count"`
		LastOrder     int    `json:"last_order"`
		MissingStatus int    `json:"missing_status"`
		MissingCode   string `json:"missing_code"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("api_client.py printed %q: %v", out, err)
	}
	if len(got.Indexes) != 3 || got.ReplayStatus != 201 || got.ReplayIndex != got.Indexes[0] ||
		got.RecordStatus != 200 || got.OrderCount != 3 || got.LastOrder != 3 || got.MissingStatus != 404 || got.MissingCode != "NotFound" {
		t.Errorf("the Python client saw %+v", got)
	}
}
