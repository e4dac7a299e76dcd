package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"orderly/wire"
)

// HTTP versions of Config.HTTP.
const (
	HTTP1 = "1.1" // keep-alive, a connection per customer
	HTTP2 = "2"   // Config.Conns multiplexed connections
)

// httpAPI is the customers' client of the HTTP API (Config.HTTP): orders
// are POST /v1/orders (without an Idempotency-Key: the gateway's own
// sessions make them exactly-once, as the binary client's do), reads GET
// /v1/customers/{id}.
type httpAPI struct {
	base string
	hc   *http.Client
}

// newHTTPAPIs gives the customers their clients: one for HTTP/1.1 (its
// transport keeps a connection per request in flight), Config.Conns
// (at least one) for HTTP/2, each its own multiplexed connection, as the
// binary protocol's customers share Conns connections.
func newHTTPAPIs(cfg *Config) ([]*httpAPI, error) {
	n := 1
	if cfg.HTTP == HTTP2 && cfg.Conns > 1 {
		n = min(cfg.Conns, cfg.Customers)
	}
	var out []*httpAPI
	for range n {
		h, err := newHTTPAPI(cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func newHTTPAPI(cfg *Config) (*httpAPI, error) {
	if cfg.HTTP != HTTP1 && cfg.HTTP != HTTP2 {
		return nil, fmt.Errorf("http %q: want %s or %s", cfg.HTTP, HTTP1, HTTP2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Customers, IdleConnTimeout: time.Minute}
	base := "http://" + cfg.Addrs[0]
	if cfg.TLS != nil {
		host, _, _ := net.SplitHostPort(cfg.Addrs[0])
		tc := cfg.TLS(host)
		base = "https://" + cfg.Addrs[0]
		if cfg.HTTP == HTTP2 {
			tc.NextProtos = []string{"h2"}
			tr.ForceAttemptHTTP2 = true
		} else {
			tc.NextProtos = []string{"http/1.1"}
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // no HTTP/2
		}
		tr.TLSClientConfig = tc
	} else if cfg.HTTP == HTTP2 {
		return nil, fmt.Errorf("http 2 needs TLS (the side port speaks HTTP/2 only over TLS)")
	}
	// No Client.Timeout: the run's context bounds every call, and a
	// timer per call would cost the generator what it measures.
	return &httpAPI{base: base, hc: &http.Client{Transport: tr}}, nil
}

func (h *httpAPI) close() { h.hc.CloseIdleConnections() }

// do places an order or reads, as worker.op.
func (h *httpAPI) do(ctx context.Context, customer, number int32, read bool, typ wire.LaptopType, cons wire.Consistency) error {
	var req *http.Request
	var err error
	if read {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet,
			h.base+"/v1/customers/"+strconv.Itoa(int(customer))+"?consistency="+cons.String(), nil)
	} else {
		body := fmt.Appendf(nil, `{"customer":%d,"number":%d,"type":%q}`, customer, number, typ)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/v1/orders", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return err
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && !(read && resp.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
