package loadgen

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orderly/wire"
)

// The generator's HTTP/1.1 client sends what the API expects, keeps its
// connection alive, says which answers failed, and dials again after the
// server closed the connection.
func TestHTTP1Conn(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/orders":
			var o struct {
				Customer, Number int
				Type             string
			}
			if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&o) != nil {
				http.Error(w, "bad order", http.StatusBadRequest)
				return
			}
			if o.Customer == 13 {
				w.Header().Set("Connection", "close")
				http.Error(w, `{"code":"Unavailable"}`, http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{}`))
		case r.Method == http.MethodGet && r.URL.Path == "/v1/customers/7" && r.URL.Query().Get("consistency") == "linearizable":
			w.Write([]byte(strings.Repeat("x", 10000))) // longer than the reader's buffer
		case r.Method == http.MethodGet && r.URL.Path == "/v1/customers/8":
			http.Error(w, `{"code":"NotFound"}`, http.StatusNotFound)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusTeapot)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newHTTP1Conn(&Config{Addrs: []string{strings.TrimPrefix(srv.URL, "http://")}})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range int32(3) {
		if err := c.do(ctx, 5, i+1, false, wire.Custom, wire.Linearizable); err != nil {
			t.Fatalf("order %d: %v", i+1, err)
		}
	}
	if err := c.do(ctx, 7, 0, true, wire.Regular, wire.Linearizable); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := c.do(ctx, 8, 0, true, wire.Regular, wire.Stale); err != nil {
		t.Fatalf("read of a customer without orders (404) is an answer, not an error: %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for five calls, want one kept alive", n)
	}
	err := c.do(ctx, 13, 1, false, wire.Regular, wire.Linearizable)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "Unavailable") {
		t.Fatalf("refused order: %v, want the status and the body", err)
	}
	if err := c.do(ctx, 5, 4, false, wire.Regular, wire.Linearizable); err != nil {
		t.Fatalf("order after the server closed the connection: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want a second one after the server closed the first", n)
	}
}
