package serve

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"orderly/wire"
)

// Answers given through Options.Async come from a goroutine that serves
// every client (the balancer's reader of the leader's connection). A
// client that sends orders and never reads its answers fills its reply
// queue; answering it then must not block that goroutine, or every other
// client's answers would wait behind it.
func TestAsyncAnswerToAClientThatNeverReadsBlocksNoOne(t *testing.T) {
	jobs := make(chan func(), 1<<16)
	var dispatcher sync.WaitGroup
	dispatcher.Add(1)
	go func() { // the one goroutine that answers everyone
		defer dispatcher.Done()
		for j := range jobs {
			j()
		}
	}()
	srv := Orderly(listen(t), echoStatus, Options{Async: func(_ context.Context, _ Caller, req wire.Message, answer func(wire.Message)) bool {
		o, ok := req.(wire.Order)
		if !ok {
			return false
		}
		jobs <- func() { answer(wire.LaptopInfo{CustomerID: o.CustomerID, OrderNumber: o.OrderNumber, Index: o.Seq}) }
		return true
	}})
	defer func() {
		srv.Close()
		close(jobs)
		dispatcher.Wait()
	}()

	// The client that never reads: a small receive buffer, and far more
	// orders than the kernel's buffers and the server's queue can hold.
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck // a bigger buffer only takes more orders to fill
	if err := wire.ClientHandshake(nc, time.Second); err != nil {
		t.Fatal(err)
	}
	go func() {
		var batch []byte
		for i := range 400_000 {
			batch = wire.AppendFrame(batch, uint64(i+1), wire.Order{CustomerID: 1, OrderNumber: int32(i), ClientID: 1, Seq: uint64(i + 1)})
			if len(batch) > 64<<10 {
				if _, err := nc.Write(batch); err != nil {
					return // closed at the end of the test
				}
				batch = batch[:0]
			}
		}
	}()
	time.Sleep(2 * time.Second) // its queue fills

	good, err := wire.Dial(context.Background(), srv.Addr(), wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	for i := range 100 {
		li, err := wire.CallAs[wire.LaptopInfo](context.Background(), good, wire.Order{CustomerID: 2, OrderNumber: int32(i), ClientID: 2, Seq: uint64(i + 1)}, 5*time.Second)
		if err != nil {
			t.Fatalf("order %d of a client that reads, while another does not: %v", i, err)
		}
		if li.CustomerID != 2 || li.OrderNumber != int32(i) {
			t.Fatalf("order %d answered with %+v", i, li)
		}
	}
}
