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

// echoServer answers every Order with a LaptopInfo, in reverse order of a
// batch, so that the client must match responses by request id.
func echoServer(t *testing.T) string {
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
	}()
	return ln.Addr().String()
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
