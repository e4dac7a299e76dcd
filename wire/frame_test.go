package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf []byte
	for i, m := range samples() {
		buf = AppendFrame(buf, uint64(i+1), m)
	}
	fr := NewFrameReader(bytes.NewReader(buf), 0)
	for i, m := range samples() {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != m.Type() || f.ID != uint64(i+1) || !bytes.Equal(f.Payload, m.AppendTo(nil)) {
			t.Fatalf("frame %d: got type %s id %d", i, f.Type, f.ID)
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: got %v, want EOF", err)
	}
}

func TestFrameLimits(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"4 GiB length", []byte{0xff, 0xff, 0xff, 0xff, 1}, ErrFrameTooLarge},
		{"just over max", []byte{0, 0, 1, 1}, ErrFrameTooLarge},
		{"shorter than header", []byte{0, 0, 0, 3, 1, 2, 3}, ErrFrameTooShort},
		{"cut body", []byte{0, 0, 0, 20, 1, 2}, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		_, err := NewFrameReader(bytes.NewReader(c.in), 256).ReadFrame()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestHandshake(t *testing.T) {
	cases := []struct {
		name  string
		hello []byte
		want  error
	}{
		{"ok", hello(), nil},
		{"http", []byte("GET / "), ErrBadMagic},
		{"version 9", []byte{'O', 'R', 'D', 'L', 0, 9}, ErrBadVersion},
	}
	for _, c := range cases {
		a, b := net.Pipe()
		errc := make(chan error, 1)
		go func() { errc <- ServerHandshake(a, time.Second) }()
		if _, err := b.Write(c.hello); err != nil {
			t.Fatal(err)
		}
		ans := make([]byte, 7)
		if _, err := io.ReadFull(b, ans); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, c.want) && (err != nil || c.want != nil) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if string(ans[:4]) != Magic {
			t.Errorf("%s: server answered %q", c.name, ans)
		}
		a.Close()
		b.Close()
	}
}

// testServer accepts one connection on 127.0.0.1, performs the server's
// handshake and hands it to serve; the test's cleanup waits for serve.
func testServer(t *testing.T, serve func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if ServerHandshake(nc, time.Second) != nil {
			return
		}
		serve(nc)
	}()
	return ln.Addr().String()
}

// echoServer answers every Order with a LaptopInfo, in reverse order of a
// batch, so that the client must match responses by request id.
func echoServer(t *testing.T) string {
	return testServer(t, func(nc net.Conn) {
		fr := NewFrameReader(nc, 0)
		fw := NewFrameWriter(nc, 16)
		defer fw.Close()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			o, err := DecodeOrder(f.Payload)
			var resp Message = LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, Index: f.ID}
			if err != nil {
				resp = Errorf(CodeBadRequest, "%v", err)
			}
			if fw.Send(AppendFrame(nil, f.ID, resp)) != nil {
				return
			}
		}
	})
}

func TestConnPipelines(t *testing.T) {
	c, err := Dial(context.Background(), echoServer(t), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int32) {
			defer wg.Done()
			li, err := c.Order(context.Background(), Order{CustomerID: i, OrderNumber: i * 2, ClientID: 1, Seq: 1})
			if err == nil && (li.CustomerID != i || li.OrderNumber != i*2) {
				err = errors.New("response matched to the wrong request")
			}
			if err != nil {
				errs <- err
			}
		}(int32(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A bad payload gets an *Error back, and the connection stays usable.
	if _, err := c.Call(context.Background(), Get{}); err == nil {
		t.Fatal("Get sent to an Order-only server: want an error")
	} else if code, ok := CodeOf(err); !ok || code != CodeBadRequest {
		t.Fatalf("got %v, want BadRequest", err)
	}
	if _, err := c.Order(context.Background(), Order{CustomerID: 1}); err != nil {
		t.Fatalf("after an error: %v", err)
	}
}

// heldServer answers each order only when the test sends on the returned
// channel: a node slower than its clients' timeouts.
func heldServer(t *testing.T) (string, chan<- struct{}) {
	t.Helper()
	release := make(chan struct{})
	addr := testServer(t, func(nc net.Conn) {
		fr := NewFrameReader(nc, 0)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := <-release; !ok {
				return
			}
			if _, err := nc.Write(AppendFrame(nil, f.ID, LaptopInfo{Index: f.ID})); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { close(release) }) // runs before testServer's wait
	return addr, release
}

// Go's settled comes when the server is through with the request: with
// an answer in time, with an answer after done said ErrNoAnswer, or when
// the connection ends; never at the timeout.
func TestGoSettled(t *testing.T) {
	addr, release := heldServer(t)
	c, err := Dial(context.Background(), addr, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type outcome struct {
		m   Message
		err error
	}
	done, settled := make(chan outcome, 1), make(chan struct{}, 1)
	send := func(timeout time.Duration) {
		t.Helper()
		if err := c.Go(Order{CustomerID: 1}, timeout, func(m Message, err error) { done <- outcome{m, err} },
			func() { settled <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
	}
	// In time: done with the answer, then settled.
	send(time.Minute)
	release <- struct{}{}
	if o := <-done; o.err != nil {
		t.Fatalf("answered in time: %v", o.err)
	}
	<-settled
	// Late: done says ErrNoAnswer at the timeout; settled waits for the answer.
	send(10 * time.Millisecond)
	if o := <-done; !errors.Is(o.err, ErrNoAnswer) {
		t.Fatalf("past its timeout: %v, want ErrNoAnswer", o.err)
	}
	select {
	case <-settled:
		t.Fatal("settled before the server answered")
	case <-time.After(3 * sweepEvery):
	}
	release <- struct{}{}
	<-settled
	// Unanswered when the connection ends: done with the end, then settled.
	send(time.Minute)
	c.Close()
	if o := <-done; o.err == nil {
		t.Fatal("connection closed: want an error")
	}
	<-settled
}

// CallSettled's settled comes as Go's does: after an answer in time, after
// a late answer the call gave up on (timeout or ctx), at the connection's
// end; and at once for a call on a closed connection, which sends nothing.
func TestCallSettled(t *testing.T) {
	addr, release := heldServer(t)
	c, err := Dial(context.Background(), addr, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	settled := make(chan struct{}, 1)
	mark := func() { settled <- struct{}{} }
	got := func() {
		t.Helper()
		select {
		case <-settled:
		case <-time.After(5 * time.Second):
			t.Fatal("not settled in 5 s")
		}
	}
	notYet := func() {
		t.Helper()
		select {
		case <-settled:
			t.Fatal("settled before the server answered")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// In time.
	go func() { release <- struct{}{} }()
	if _, err := c.CallSettled(context.Background(), Order{CustomerID: 1}, time.Minute, mark); err != nil {
		t.Fatalf("answered in time: %v", err)
	}
	got()
	// Past its timeout, then past its context: settled waits for the answer.
	if _, err := c.CallSettled(context.Background(), Order{CustomerID: 1}, 10*time.Millisecond, mark); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("past its timeout: %v, want ErrNoAnswer", err)
	}
	notYet()
	release <- struct{}{}
	got()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.CallSettled(ctx, Order{CustomerID: 1}, time.Minute, mark); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past its context: %v", err)
	}
	notYet()
	release <- struct{}{}
	got()
	// Unanswered when the connection ends; then one never sent.
	if _, err := c.CallSettled(context.Background(), Order{CustomerID: 1}, 10*time.Millisecond, mark); err == nil {
		t.Fatal("want ErrNoAnswer")
	}
	c.Close()
	got()
	if _, err := c.CallSettled(context.Background(), Order{CustomerID: 1}, time.Minute, mark); err == nil {
		t.Fatal("a call on a closed connection: want an error")
	}
	got()
}
