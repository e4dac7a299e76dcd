package chaos

import (
	"context"
	"fmt"
	"time"

	"orderly/client"
	"orderly/wire"
)

// diskFullSize is the tmpfs under each data dir when disk-full is on: big
// enough for a 10-minute run's log and snapshots, small enough to fill in
// a moment.
const diskFullSize = "512m"

// lastWriteCustomer is the customer lastWrite orders for; no client of
// the workload uses it.
const lastWriteCustomer = 1_000_000

// lastWrite places one order once every fault is healed, retrying for up
// to within: a cluster that never comes back fails the progress check.
func lastWrite(ctx context.Context, addrs []string, within time.Duration) error {
	cl, err := client.New(client.Options{Addrs: addrs, RetryTimeout: within})
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cl.Order(ctx, lastWriteCustomer, 1, wire.Regular); err != nil {
		return fmt.Errorf("an order after healing every fault: %w", err)
	}
	return nil
}

// checkProgress fails a run in which the cluster did not work: too few
// acknowledged orders or linearizable reads overall, a fault after which
// no write was acknowledged within opt.RecoverWithin, a target that never
// caught up, a slow disk that caused an election, or no write once all was
// healed. Without it a cluster that refuses everything passes the other
// checks: nothing acknowledged, nothing lost.
func checkProgress(ops []Op, faults []Fault, opt Options, finalWrite error) Verdict {
	v := Verdict{Name: "progress: work done, and after every fault"}
	var orders, reads int
	var runEnd time.Duration // the last call of the workload
	for _, op := range ops {
		runEnd = max(runEnd, op.Call)
		if op.Outcome != OK {
			continue
		}
		switch {
		case op.Kind == OpOrder:
			orders++
		case op.Consistency == wire.Linearizable:
			reads++
		}
	}
	if orders < opt.MinOrders {
		v.Errors = append(v.Errors, fmt.Sprintf("%d orders acknowledged, want at least %d", orders, opt.MinOrders))
	}
	if reads < opt.MinReads {
		v.Errors = append(v.Errors, fmt.Sprintf("%d linearizable reads answered, want at least %d", reads, opt.MinReads))
	}
	if finalWrite != nil {
		v.Errors = append(v.Errors, finalWrite.Error())
	}
	var slowest time.Duration
	for _, f := range faults {
		what := fmt.Sprintf("%s on %s at %v", f.Kind, f.Target, f.Start.Round(time.Millisecond))
		if f.Recovered < 0 {
			v.Errors = append(v.Errors, fmt.Sprintf("%s: the target had not caught up %v after the fault ended", what, opt.RecoverWithin))
		}
		if f.Kind == SlowDisk && f.Elections > 0 {
			v.Errors = append(v.Errors, fmt.Sprintf("%s: %d election(s) with log writes slower than usual but below the election timeout", what, f.Elections))
		}
		if f.End+opt.RecoverWithin > runEnd {
			continue // the run ended first; lastWrite covers it
		}
		first := firstAckAfter(ops, f.End)
		if first < 0 || first-f.End > opt.RecoverWithin {
			v.Errors = append(v.Errors, fmt.Sprintf("%s: no write acknowledged within %v after it ended", what, opt.RecoverWithin))
			continue
		}
		slowest = max(slowest, first-f.End)
	}
	v.Pass = len(v.Errors) == 0
	v.Detail = fmt.Sprintf("%d orders acknowledged, %d linearizable reads; after %d faults the slowest first write came %v after healing",
		orders, reads, len(faults), slowest.Round(time.Millisecond))
	if len(v.Errors) > 5 {
		v.Detail += fmt.Sprintf(" (%d problems, first 5 shown)", len(v.Errors))
		v.Errors = v.Errors[:5]
	}
	return v
}

// firstAckAfter is when the first write invoked at or after t was
// acknowledged (-1: none).
func firstAckAfter(ops []Op, t time.Duration) time.Duration {
	first := time.Duration(-1)
	for _, op := range ops {
		if op.Kind == OpOrder && op.Outcome == OK && op.Call >= t && (first < 0 || op.Return < first) {
			first = op.Return
		}
	}
	return first
}
