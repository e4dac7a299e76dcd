// Package validate checks a chaos run's history: linearizability
// (porcupine, per customer), acknowledged orders lost, orders reported
// failed yet applied, orders applied twice, session guarantees, and progress (that the cluster did work, and came
// back after every fault).
package validate

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"orderly/chaos/failpoint"
	"orderly/chaos/model"
	"orderly/wire"
)

// Verdict is one check's result.
type Verdict struct {
	Name   string   `json:"name"`
	Pass   bool     `json:"pass"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors,omitempty"` // the first few violations
}

// Counts compares every customer's final order_count with the history.
// Three findings, each its own verdict:
//   - lost: fewer in the record than acknowledged;
//   - reported failed, yet applied: an order the client was told failed
//     (surely not applied) that is in the record: a read saw it as the
//     last order, or the record holds more than acknowledged + unknown
//     while failed orders could account for it;
//   - applied twice: a resend answered with a new index (doubleApply), or
//     more in the record than acknowledged + unknown + failed.
//
// A customer with orders in the history but no final count (its shard
// answered no final read) cannot be checked: all three fail then.
func Counts(ops []model.Op, final map[int32]uint64, doubleApply []string, faults []failpoint.Fault) (lost, failedApplied, dup Verdict) {
	acked, unknown := map[int32]uint64{}, map[int32]uint64{}
	failed := map[int32][]model.Op{}
	lastRead := map[int32]map[int32]bool{} // customer -> order numbers a read saw last
	for _, op := range ops {
		if op.Outcome == model.OK && op.Kind == model.OpRead && op.Last != wire.NoOrder {
			if lastRead[op.Customer] == nil {
				lastRead[op.Customer] = map[int32]bool{}
			}
			lastRead[op.Customer][op.Last] = true
		}
		if op.Kind != model.OpOrder {
			continue
		}
		switch op.Outcome {
		case model.OK:
			acked[op.Customer]++
		case model.Unknown:
			unknown[op.Customer]++
		case model.Failed:
			failed[op.Customer] = append(failed[op.Customer], op)
		}
	}
	lost = Verdict{Name: "acknowledged orders lost", Pass: true}
	failedApplied = Verdict{Name: "orders reported failed, yet applied", Pass: true}
	dup = Verdict{Name: "orders applied twice", Pass: true}
	var nLost, nFailedApplied, nDup uint64
	customers := make([]int32, 0, len(final))
	for c := range final {
		customers = append(customers, c)
	}
	sort.Slice(customers, func(i, j int) bool { return customers[i] < customers[j] })
	for _, c := range customers {
		count := final[c]
		if count < acked[c] {
			nLost += acked[c] - count
			lost.Errors = append(lost.Errors, fmt.Sprintf("customer %d: %d acknowledged, %d in the record", c, acked[c], count))
		}
		var seen []model.Op // failed orders a read saw as the last order
		for _, op := range failed[c] {
			if lastRead[c][op.Number] {
				seen = append(seen, op)
				failedApplied.Errors = append(failedApplied.Errors, "read as the last order: "+describe(op, faults))
			}
		}
		surplus := uint64(0)
		if count > acked[c]+unknown[c] {
			surplus = count - acked[c] - unknown[c]
		}
		nFailed := uint64(len(failed[c]))
		if byCount := min(surplus, nFailed); byCount > uint64(len(seen)) {
			// The record holds failed orders no read saw: name the
			// candidates, the closest to a fault first.
			failedApplied.Errors = append(failedApplied.Errors, fmt.Sprintf(
				"customer %d: %d in the record, %d acknowledged + %d unknown: %d of its %d failed orders were applied; candidates: %s",
				c, count, acked[c], unknown[c], byCount, nFailed, describeFew(failed[c], faults)))
		}
		nFailedApplied += max(min(surplus, nFailed), uint64(len(seen)))
		if surplus > nFailed {
			nDup += surplus - nFailed
			dup.Errors = append(dup.Errors, fmt.Sprintf("customer %d: %d in the record, but only %d acknowledged + %d unknown + %d failed",
				c, count, acked[c], unknown[c], nFailed))
		}
	}
	dup.Errors = append(dup.Errors, doubleApply...)
	nDup += uint64(len(doubleApply))
	unread := unreadCustomers(final, acked, unknown, failed)
	if len(unread) > 0 {
		msg := fmt.Sprintf("%d customers with orders have no final count, so were not checked: %v", len(unread), unread[:min(len(unread), 10)])
		lost.Errors = append([]string{msg}, lost.Errors...)
		failedApplied.Errors = append([]string{msg}, failedApplied.Errors...)
		dup.Errors = append([]string{msg}, dup.Errors...)
	}
	allRead := len(unread) == 0
	lost.Pass, failedApplied.Pass, dup.Pass = allRead && nLost == 0, allRead && nFailedApplied == 0, allRead && nDup == 0
	lost.Detail = fmt.Sprintf("%d lost", nLost)
	failedApplied.Detail = fmt.Sprintf("%d reported failed, yet applied", nFailedApplied)
	dup.Detail = fmt.Sprintf("%d applied twice (%d resends answered with a new index)", nDup, len(doubleApply))
	lost.Errors, failedApplied.Errors, dup.Errors = firstFew(lost.Errors), firstFew(failedApplied.Errors), firstFew(dup.Errors)
	return lost, failedApplied, dup
}

// unreadCustomers are the customers with orders in the history and no
// final count, in id order.
func unreadCustomers(final, acked, unknown map[int32]uint64, failed map[int32][]model.Op) []int32 {
	seen := map[int32]bool{}
	for c := range acked {
		seen[c] = true
	}
	for c := range unknown {
		seen[c] = true
	}
	for c := range failed {
		seen[c] = true
	}
	var out []int32
	for c := range seen {
		if _, ok := final[c]; !ok {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// faultWindow is how far from an operation a fault counts as "around" it.
const faultWindow = 5 * time.Second

// describe names an operation and the faults around it, for a finding.
func describe(op model.Op, faults []failpoint.Fault) string {
	s := fmt.Sprintf("client %d (%s) customer %d order %d, called at %v, returned at %v",
		op.Client, op.Via, op.Customer, op.Number, op.Call.Round(time.Millisecond), op.Return.Round(time.Millisecond))
	if op.Err != "" {
		s += ", error: " + op.Err
	}
	var around []string
	for _, f := range faults {
		if f.Start <= op.Return+faultWindow && f.End+faultWindow >= op.Call {
			around = append(around, fmt.Sprintf("%s on %s %v-%v", f.Kind, f.Target, f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond)))
		}
	}
	if len(around) == 0 {
		return s + "; no fault within " + faultWindow.String()
	}
	return s + "; faults around it: " + strings.Join(around, ", ")
}

// describeFew describes up to three operations, those with a fault around
// them first.
func describeFew(ops []model.Op, faults []failpoint.Fault) string {
	var near, far []string
	for _, op := range ops {
		d := describe(op, faults)
		if strings.Contains(d, "faults around it") {
			near = append(near, d)
		} else {
			far = append(far, d)
		}
	}
	all := append(near, far...)
	if len(all) > 3 {
		return strings.Join(all[:3], "; ") + fmt.Sprintf("; and %d more", len(all)-3)
	}
	return strings.Join(all, "; ")
}

// Sessions: a client's session read must see its own acknowledged
// writes and never go back behind anything the client has read before.
func Sessions(ops []model.Op) Verdict {
	type key struct {
		client int
		cust   int32
	}
	floor := map[key]uint64{} // what this client knows the count has reached
	v := Verdict{Name: "session reads: read-your-writes and monotonic", Pass: true}
	byReturn := make([]int, len(ops)) // indices: no copy of a long history
	for i := range byReturn {
		byReturn[i] = i
	}
	sort.SliceStable(byReturn, func(i, j int) bool { return ops[byReturn[i]].Return < ops[byReturn[j]].Return })
	n := 0
	for _, i := range byReturn {
		op := &ops[i]
		if op.Outcome != model.OK {
			continue
		}
		k := key{op.Client, op.Customer}
		if op.Kind == model.OpRead && op.Consistency == wire.Session {
			n++
			if op.Count < floor[k] {
				v.Pass = false
				v.Errors = append(v.Errors, fmt.Sprintf("client %d (%s) read customer %d with count %d after it had seen %d",
					op.Client, op.Via, op.Customer, op.Count, floor[k]))
			}
		}
		floor[k] = max(floor[k], op.Count)
	}
	v.Detail = fmt.Sprintf("%d session reads, %d violations", n, len(v.Errors))
	v.Errors = firstFew(v.Errors)
	return v
}

func firstFew(s []string) []string {
	if len(s) > 10 {
		return append(s[:10:10], fmt.Sprintf("... and %d more", len(s)-10))
	}
	return s
}

// Bounds are what Progress asks of a run.
type Bounds struct {
	MinOrders, MinReads int           // acknowledged orders, answered linearizable reads
	RecoverWithin       time.Duration // after each healed fault: a write, the target caught up
}

// Progress fails a run in which the cluster did not work: too few
// acknowledged orders or linearizable reads overall, a fault after which
// no write was acknowledged within opt.RecoverWithin, a target that never
// caught up, a slow disk that caused an election, or atEnd: no write, or
// no final read, once all was healed. Without it a cluster that refuses
// everything passes the other checks: nothing acknowledged, nothing lost.
func Progress(ops []model.Op, faults []failpoint.Fault, opt Bounds, atEnd error) Verdict {
	v := Verdict{Name: "progress: work done, and after every fault"}
	var orders, reads int
	var runEnd time.Duration // the last call of the workload
	for _, op := range ops {
		runEnd = max(runEnd, op.Call)
		if op.Outcome != model.OK {
			continue
		}
		switch {
		case op.Kind == model.OpOrder:
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
	if atEnd != nil {
		v.Errors = append(v.Errors, atEnd.Error())
	}
	var slowest time.Duration
	for _, f := range faults {
		what := fmt.Sprintf("%s on %s at %v", f.Kind, f.Target, f.Start.Round(time.Millisecond))
		if f.Recovered < 0 {
			v.Errors = append(v.Errors, fmt.Sprintf("%s: the target had not caught up %v after the fault ended", what, opt.RecoverWithin))
		}
		if f.Kind == failpoint.SlowDisk && f.Elections > 0 {
			v.Errors = append(v.Errors, fmt.Sprintf("%s: %d election(s) with log writes slower than usual but below the election timeout", what, f.Elections))
		}
		if f.End+opt.RecoverWithin > runEnd {
			continue // the run ended first; lastWrite covers it
		}
		first := FirstAckAfter(ops, f.End)
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

// FirstAckAfter is when the first write invoked at or after t was
// acknowledged (-1: none).
func FirstAckAfter(ops []model.Op, t time.Duration) time.Duration {
	first := time.Duration(-1)
	for _, op := range ops {
		if op.Kind == model.OpOrder && op.Outcome == model.OK && op.Call >= t && (first < 0 || op.Return < first) {
			first = op.Return
		}
	}
	return first
}
