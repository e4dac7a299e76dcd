package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"orderly/serve"
	"orderly/wire"
)

// fakeBackend answers orders from a script and records what it was sent.
type fakeBackend struct {
	mu      sync.Mutex
	orders  []wire.Order
	answers []wire.Message // popped per order; empty: applied
	watch   serve.StreamHandler
}

func (f *fakeBackend) do(_ context.Context, _ serve.Caller, req wire.Message) wire.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := req.(wire.Order)
	if !ok {
		return wire.StatusInfo{ID: "fake"}
	}
	f.orders = append(f.orders, o)
	if len(f.answers) > 0 {
		a := f.answers[0]
		f.answers = f.answers[1:]
		return a
	}
	return wire.LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, LaptopType: o.LaptopType, ExpertID: -1, Index: uint64(len(f.orders)), OrderCount: 1}
}

func startGateway(t *testing.T, f *fakeBackend, l Limits) *httptest.Server {
	t.Helper()
	g := New(Options{Backend: Backend{Do: f.do, Watch: f.watch}, Limits: l})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/orders", strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
	resp.Body.Close()
	return resp
}

const anOrder = `{"customer":7,"number":1,"type":"regular"}`

// TestLaneSeqs: a lane's seq is used again after a sure refusal (the FSM
// never saw it), moves on after an unknown outcome (it may apply yet),
// and a lane whose session is gone is replaced by a new client at seq 1.
func TestLaneSeqs(t *testing.T) {
	applied := wire.LaptopInfo{CustomerID: 7, OrderNumber: 1, ExpertID: -1, Index: 1, OrderCount: 1}
	f := &fakeBackend{answers: []wire.Message{
		wire.Errorf(wire.CodeOverloaded, "busy"), applied,
		wire.Errorf(wire.CodeTimeout, "lost"), applied,
		wire.Errorf(wire.CodeSessionExpired, "gone"), applied,
	}}
	srv := startGateway(t, f, Limits{})
	want := []int{429, 201, 504, 201, 201}
	for i, w := range want {
		if got := post(t, srv.URL, anOrder).StatusCode; got != w {
			t.Fatalf("order %d: %d, want %d", i, got, w)
		}
	}
	o := f.orders
	if len(o) != 6 {
		t.Fatalf("%d orders sent, want 6", len(o))
	}
	id := o[0].ClientID
	for i, w := range []uint64{1, 1, 2, 3, 4} {
		if o[i].ClientID != id || o[i].Seq != w {
			t.Errorf("order %d sent as (%d, %d), want (%d, %d)", i, o[i].ClientID, o[i].Seq, id, w)
		}
	}
	if o[5].ClientID == id || o[5].Seq != 1 {
		t.Errorf("after SessionExpired the order went as (%d, %d), want a new client at seq 1", o[5].ClientID, o[5].Seq)
	}
}

// TestIdempotencyKey: a key is its own session at seq 1, the same for
// the same key, another for another key; a key reused for another order
// is 422; bad keys are 400 and send nothing.
func TestIdempotencyKey(t *testing.T) {
	f := &fakeBackend{}
	srv := startGateway(t, f, Limits{})
	post(t, srv.URL, anOrder, "Idempotency-Key", `"k1"`)
	post(t, srv.URL, anOrder, "Idempotency-Key", `k1`)
	post(t, srv.URL, anOrder, "Idempotency-Key", `"k2"`)
	o := f.orders
	if o[0].ClientID != o[1].ClientID || o[0].Seq != 1 || o[1].Seq != 1 || o[2].ClientID == o[0].ClientID {
		t.Errorf("keys k1, k1, k2 sent as %+v", o)
	}
	f.answers = []wire.Message{wire.LaptopInfo{CustomerID: 8, OrderNumber: 1, Index: 9}}
	if got := post(t, srv.URL, anOrder, "Idempotency-Key", "k1").StatusCode; got != http.StatusUnprocessableEntity {
		t.Errorf("a key whose first order was another: %d, want 422", got)
	}
	sent := len(f.orders)
	for _, k := range []string{"", `""`, "a b", "é", strings.Repeat("x", 256), `"a"b"`} {
		if got := post(t, srv.URL, anOrder, "Idempotency-Key", k).StatusCode; got != http.StatusBadRequest {
			t.Errorf("key %q: %d, want 400", k, got)
		}
	}
	if len(f.orders) != sent {
		t.Errorf("bad keys sent %d orders", len(f.orders)-sent)
	}
	if keyClient([]byte("cert A"), "k") == keyClient([]byte("cert B"), "k") {
		t.Error("two certificates share a key's session")
	}
}

// TestRateLimit: a client over its rate is answered 429 with
// Retry-After, and nothing is sent.
func TestRateLimit(t *testing.T) {
	f := &fakeBackend{}
	srv := startGateway(t, f, Limits{RatePerClient: 1})
	post(t, srv.URL, anOrder)
	resp := post(t, srv.URL, anOrder)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(f.orders) != 1 {
		t.Errorf("second call in a second: %d %v, %d orders sent", resp.StatusCode, resp.Header, len(f.orders))
	}
}

// TestWatchers: past the per-client bound a watch is 429; a watcher that
// does not read is cut off once a write has waited WatchWriteTimeout,
// and its slot is free again.
func TestWatchers(t *testing.T) {
	ended := make(chan error, 16)
	f := &fakeBackend{watch: func(ctx context.Context, _ serve.Caller, w wire.Watch, send func(context.Context, wire.Message) error) wire.Message {
		if w.Customer == 1 { // an idle feed
			<-ctx.Done()
			return nil
		}
		big := wire.Events{}
		for i := range 500 {
			big.Events = append(big.Events, wire.Event{Index: uint64(i + 1), CustomerID: 2})
		}
		for ctx.Err() == nil {
			if err := send(ctx, big); err != nil {
				ended <- err
				return nil
			}
			for i := range big.Events {
				big.Events[i].Index += 500
			}
		}
		ended <- ctx.Err()
		return nil
	}}
	srv := startGateway(t, f, Limits{MaxWatchersPerClient: 2, WatchWriteTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/watch?customer=1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("watch: %v %v", err, resp)
		}
		defer resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/v1/watch?customer=1")
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third watch of one client: %v %v, want 429", err, resp)
	}
	resp.Body.Close()
	cancel()

	// A client that sends its request and never reads past the status
	// line. The cancelled watches free their slots once the server sees
	// their connections go: until then the answer is 429, and it asks
	// again.
	var c net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err = net.Dial("tcp", srv.Listener.Addr().String()); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /v1/watch?customer=2 HTTP/1.1\r\nHost: x\r\n\r\n")
		status, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(status, " 200 ") {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no watch slot free 10 s after the watches ended: %q", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the watch ended without an error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a watcher that does not read was not cut off in 20 s")
	}
	// Its slot is free: two watches may open again.
	for range 2 {
		resp, err := http.Get(srv.URL + "/v1/watch?customer=2&from_index=1")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("watch after the cut-off: %v %v", err, resp)
		}
		br := bufio.NewReader(resp.Body)
		if line, _ := br.ReadString('\n'); line != "event: order\n" {
			t.Errorf("first line %q", line)
		}
		resp.Body.Close()
	}
}

// TestUnknownOutcome: a write whose outcome is unknown says so, and is
// retryable only with its Idempotency-Key (resent without one, an
// applied order would be applied again); a code this build does not know
// is unknown, never "not applied" (with a key, safe to resend).
func TestUnknownOutcome(t *testing.T) {
	for _, tc := range []struct {
		answer    wire.Message
		key       string
		outcome   string
		retryable bool
	}{
		{wire.Errorf(wire.CodeTimeout, "lost"), "", "unknown", false},
		{wire.Errorf(wire.CodeTimeout, "lost"), "k", "unknown", true},
		{wire.Errorf(wire.Code(200), "new"), "k", "unknown", true},
		{wire.Errorf(wire.Code(200), "new"), "", "unknown", false},
		{wire.Errorf(wire.CodeOverloaded, "busy"), "", "not_applied", true},
	} {
		f := &fakeBackend{answers: []wire.Message{tc.answer}}
		srv := startGateway(t, f, Limits{})
		req, _ := http.NewRequest("POST", srv.URL+"/v1/orders", strings.NewReader(anOrder))
		if tc.key != "" {
			req.Header.Set("Idempotency-Key", tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body apiError
		json.NewDecoder(resp.Body).Decode(&body) //nolint:errcheck // checked below
		resp.Body.Close()
		if body.Outcome != tc.outcome || body.Retryable != tc.retryable {
			t.Errorf("%v with key %q: outcome %q retryable %v, want %q %v", tc.answer, tc.key, body.Outcome, body.Retryable, tc.outcome, tc.retryable)
		}
	}
}
