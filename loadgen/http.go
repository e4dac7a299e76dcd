package loadgen

import (
	"bytes"
	"context"
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

// apiClient is a customer's client of the HTTP API (Config.HTTP):
// orders are POST /v1/orders (without an Idempotency-Key: the gateway's
// own sessions make them exactly-once, as the binary client's do), reads
// GET /v1/customers/{id}.
type apiClient interface {
	do(ctx context.Context, customer, number int32, read bool, typ wire.LaptopType, cons wire.Consistency) error
	close()
}

// httpAPI is net/http's client, for HTTP/2.
type httpAPI struct {
	base string
	hc   *http.Client
}

// newHTTPAPIs gives the customers their clients: over HTTP/1.1 a
// keep-alive connection per customer (http1Conn), over HTTP/2
// Config.Conns (at least one) multiplexed connections, as the binary
// protocol's customers share Conns connections.
func newHTTPAPIs(cfg *Config) ([]apiClient, error) {
	var out []apiClient
	if cfg.HTTP == HTTP1 {
		for range cfg.Customers {
			out = append(out, newHTTP1Conn(cfg))
		}
		return out, nil
	}
	n := 1
	if cfg.Conns > 1 {
		n = min(cfg.Conns, cfg.Customers)
	}
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
	if cfg.HTTP != HTTP2 {
		return nil, fmt.Errorf("http %q: want %s or %s", cfg.HTTP, HTTP1, HTTP2)
	}
	if cfg.TLS == nil {
		return nil, fmt.Errorf("http 2 needs TLS (the side port speaks HTTP/2 only over TLS)")
	}
	host, _, _ := net.SplitHostPort(cfg.Addrs[0])
	tc := cfg.TLS(host)
	tc.NextProtos = []string{"h2"}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Customers, IdleConnTimeout: time.Minute,
		ForceAttemptHTTP2: true, TLSClientConfig: tc}
	base := "https://" + cfg.Addrs[0]
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
