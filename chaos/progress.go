package chaos

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"orderly/client"
	"orderly/wire"
)

// diskFullSize is the tmpfs under each data dir when disk-full is on: big
// enough for a 10-minute run's log and snapshots, small enough to fill in
// a moment.
const diskFullSize = "512m"

// diskAlarmFree is the nodes' --min-free beside diskFullSize: the log and
// snapshots of a long run must fit above it, or the alarm would stop
// orders with no nemesis at work.
const diskAlarmFree = "32MiB"

// lastWriteCustomer is the customer lastWrite orders for; no client of
// the workload uses it.
const lastWriteCustomer = 1_000_000

// lastWrite places one order once every fault is healed, retrying for up
// to within: a cluster that never comes back fails the progress check.
// NoSpace is waited out too: a disk alarm clears by itself once its node
// sees the room the healed disk-full left, which takes up to a second
// (its next look at the disk, then its next report to the leader).
func lastWrite(ctx context.Context, addrs []string, tls func(string) *tls.Config, within time.Duration) error {
	cl, err := client.New(client.Options{Addrs: addrs, RetryTimeout: within, DialTimeout: within, TLS: tls})
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(within)
	for {
		_, err := cl.Order(ctx, lastWriteCustomer, 1, wire.Regular)
		if err == nil {
			return nil
		}
		if code, ok := wire.CodeOf(err); !ok || code != wire.CodeNoSpace || time.Now().After(deadline) {
			return fmt.Errorf("an order after healing every fault: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("an order after healing every fault: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
