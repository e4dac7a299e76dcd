package loadgen

import (
	"bufio"
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

// http1Conn is one customer's keep-alive HTTP/1.1 connection to the API,
// spoken as wrk and h2load speak it: a request is one write, its answer
// is read on the same goroutine (http.ReadResponse). net/http's client
// hands every request to a connection's writer goroutine and every answer
// from its reader goroutine; on this machine that cost the generator
// 115 µs of CPU per order against this one's 63 (same hour, 64
// customers), more than the balancer spent on it, and the generator
// shares the cores it measures (docs/performance.md).
type http1Conn struct {
	addr string
	host string
	tls  *tls.Config // nil: plaintext
	nc   net.Conn
	br   *bufio.Reader
	req  []byte // reused request buffer
	body []byte // reused response body buffer
}

func newHTTP1Conn(cfg *Config) *http1Conn {
	c := &http1Conn{addr: cfg.Addrs[0], host: cfg.Addrs[0]}
	if cfg.TLS != nil {
		host, _, _ := net.SplitHostPort(cfg.Addrs[0])
		c.tls = cfg.TLS(host)
		c.tls.NextProtos = []string{"http/1.1"}
	}
	return c
}

func (c *http1Conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// dial opens the connection if it is not open.
func (c *http1Conn) dial(ctx context.Context) error {
	if c.nc != nil {
		return nil
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	if c.tls != nil {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return fmt.Errorf("TLS handshake with %s: %w", c.addr, err)
		}
		nc = tc
	}
	c.nc, c.br = nc, bufio.NewReaderSize(nc, 4096)
	return nil
}

// do places an order or reads, as worker.op. A failed exchange closes
// the connection; the next call dials again.
func (c *http1Conn) do(ctx context.Context, customer, number int32, read bool, typ wire.LaptopType, cons wire.Consistency) error {
	if err := c.dial(ctx); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl) //nolint:errcheck // a failed deadline fails the I/O
	}
	r := c.req[:0]
	if read {
		r = append(r, "GET /v1/customers/"...)
		r = strconv.AppendInt(r, int64(customer), 10)
		r = append(r, "?consistency="...)
		r = append(r, cons.String()...)
		r = append(r, " HTTP/1.1\r\nHost: "...)
		r = append(r, c.host...)
		r = append(r, "\r\n\r\n"...)
	} else {
		var body [64]byte
		b := fmt.Appendf(body[:0], `{"customer":%d,"number":%d,"type":%q}`, customer, number, typ)
		r = append(r, "POST /v1/orders HTTP/1.1\r\nHost: "...)
		r = append(r, c.host...)
		r = append(r, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		r = strconv.AppendInt(r, int64(len(b)), 10)
		r = append(r, "\r\n\r\n"...)
		r = append(r, b...)
	}
	c.req = r
	if _, err := c.nc.Write(r); err != nil {
		c.close()
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return err
	}
	c.body = c.body[:0]
	for {
		if len(c.body) == cap(c.body) {
			c.body = append(c.body, 0)[:len(c.body)]
		}
		n, err := resp.Body.Read(c.body[len(c.body):cap(c.body)])
		c.body = c.body[:len(c.body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			c.close()
			return err
		}
	}
	resp.Body.Close()
	if resp.Close {
		c.close()
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && !(read && resp.StatusCode == http.StatusNotFound) {
		method := "POST"
		if read {
			method = "GET"
		}
		return fmt.Errorf("%s: %d %s", method, resp.StatusCode, c.body)
	}
	return nil
}
