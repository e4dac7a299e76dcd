package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/chaos/failpoint"
	"orderly/chaos/model"
	"orderly/wire"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func order(client int, cust int32, number int32, call, ret int, out model.Outcome, count uint64) model.Op {
	return model.Op{Client: client, Kind: model.OpOrder, Customer: cust, Number: number, Call: ms(call), Return: ms(ret), Outcome: out, Count: count}
}

func read(client int, cust int32, cons wire.Consistency, call, ret int, count uint64, last int32) model.Op {
	return model.Op{Client: client, Kind: model.OpRead, Consistency: cons, Customer: cust, Call: ms(call), Return: ms(ret), Outcome: model.OK, Count: count, Last: last}
}

func TestLinearizableModel(t *testing.T) {
	html := filepath.Join(t.TempDir(), "l.html")
	good := []model.Op{
		order(0, 1, 1, 0, 10, model.OK, 1),
		read(1, 1, wire.Linearizable, 5, 6, 0, wire.NoOrder), // concurrent with the order: may miss it
		read(1, 1, wire.Linearizable, 11, 12, 1, 1),
		order(0, 1, 2, 20, 30, model.Unknown, 0),    // may apply any time after 20
		read(1, 1, wire.Linearizable, 40, 41, 1, 1), // not yet
		read(1, 1, wire.Linearizable, 50, 51, 2, 2), // now it has
		order(0, 2, 1, 0, 10, model.OK, 1),          // another customer, its own partition
	}
	if v := Linearizable(good, time.Minute, html); !v.Pass {
		t.Fatalf("a linearizable history was refused: %s", v.Detail)
	}
	stale := append(good[:3:3], read(2, 1, wire.Linearizable, 15, 16, 0, wire.NoOrder))
	if v := Linearizable(stale, time.Minute, html); v.Pass {
		t.Fatal("a read that missed an order acknowledged before it began was accepted")
	}
	double := []model.Op{order(0, 1, 1, 0, 10, model.OK, 1), order(0, 1, 2, 20, 30, model.OK, 3)}
	if v := Linearizable(double, time.Minute, html); v.Pass {
		t.Fatal("an order that counted two was accepted")
	}
}

func TestCountChecks(t *testing.T) {
	ops := []model.Op{order(0, 1, 1, 0, 1, model.OK, 1), order(0, 1, 2, 2, 3, model.Unknown, 0), order(0, 1, 3, 4, 5, model.Failed, 0)}
	for _, tc := range []struct {
		final                          uint64
		lostOK, failedAppliedOK, dupOK bool
		doubleApplyReport              []string
	}{
		{1, true, true, true, nil}, {2, true, true, true, nil}, // the unknown order may or may not be there
		{0, false, true, true, nil},  // an acknowledged order is missing
		{3, true, false, true, nil},  // more than acknowledged + unknown: the failed order was applied
		{4, true, false, false, nil}, // more than acknowledged + unknown + failed: applied twice
		{2, true, true, false, []string{"a resend applied again"}},
	} {
		lost, failedApplied, dup := Counts(ops, map[int32]uint64{1: tc.final}, tc.doubleApplyReport, nil)
		if lost.Pass != tc.lostOK || failedApplied.Pass != tc.failedAppliedOK || dup.Pass != tc.dupOK {
			t.Errorf("final count %d: lost %v (%s), failed yet applied %v (%s), dup %v (%s)", tc.final,
				lost.Pass, lost.Detail, failedApplied.Pass, failedApplied.Detail, dup.Pass, dup.Detail)
		}
	}
}

// TestFailedYetAppliedIsNamed: the seed-20261207 run. An order reported
// failed that a read then saw as the customer's last is "reported failed,
// yet applied", not "applied twice", and the finding names the order and
// the fault around it.
func TestFailedYetAppliedIsNamed(t *testing.T) {
	failed := order(3, 0, 47242, 564030, 568100, model.Failed, 0)
	failed.Via, failed.Err = model.ViaNodes, "gave up after 4s: NotLeader: node n1 is not the leader"
	ops := []model.Op{
		order(1, 0, 47241, 563000, 563010, model.OK, 1),
		failed,
		read(2, 0, wire.Linearizable, 576590, 576600, 2, 47242),
		order(1, 0, 47243, 576700, 576710, model.OK, 3),
	}
	faults := []failpoint.Fault{{Kind: failpoint.RestartAll, Target: "all", Start: ms(564100), End: ms(570000)}}
	lost, failedApplied, dup := Counts(ops, map[int32]uint64{0: 3}, nil, faults)
	if !lost.Pass || !dup.Pass {
		t.Fatalf("lost %v (%v), applied twice %v (%v): want both to pass", lost.Pass, lost.Errors, dup.Pass, dup.Errors)
	}
	if failedApplied.Pass || len(failedApplied.Errors) != 1 {
		t.Fatalf("reported failed, yet applied: pass %v, %v; want one finding", failedApplied.Pass, failedApplied.Errors)
	}
	for _, want := range []string{"client 3 (nodes) customer 0 order 47242", "called at 9m24.03s", "NotLeader", "restart-all on all"} {
		if !strings.Contains(failedApplied.Errors[0], want) {
			t.Errorf("finding %q does not name %q", failedApplied.Errors[0], want)
		}
	}
}

// TestCountsFailWithoutAFinalCount: a customer with orders whose final
// read failed (its shard had no leader) is not checked, so the three
// count verdicts fail and say so, rather than pass on the others.
func TestCountsFailWithoutAFinalCount(t *testing.T) {
	ops := []model.Op{
		order(1, 0, 1, 1000, 1010, model.OK, 1),
		order(1, 7, 1, 1020, 1030, model.OK, 2),
	}
	lost, failedApplied, dup := Counts(ops, map[int32]uint64{0: 1}, nil, nil)
	for _, v := range []Verdict{lost, failedApplied, dup} {
		if v.Pass || len(v.Errors) == 0 || !strings.Contains(v.Errors[0], "1 customers with orders have no final count") ||
			!strings.Contains(v.Errors[0], "[7]") {
			t.Errorf("%s: pass %v, %v; want a failure naming customer 7", v.Name, v.Pass, v.Errors)
		}
	}
	lost, failedApplied, dup = Counts(ops, map[int32]uint64{0: 1, 7: 1}, nil, nil)
	if !lost.Pass || !failedApplied.Pass || !dup.Pass {
		t.Fatalf("with every final count: %+v %+v %+v", lost, failedApplied, dup)
	}
}

// TestLinearizableShowsTheIllegalCustomerOnly: the page of a failed check
// holds one customer's operations, not the whole history.
func TestLinearizableShowsTheIllegalCustomerOnly(t *testing.T) {
	html := filepath.Join(t.TempDir(), "l.html")
	var ops []model.Op
	for c := int32(0); c < 50; c++ {
		for n := int32(1); n <= 20; n++ {
			ops = append(ops, order(0, c, n, int(n)*10, int(n)*10+5, model.OK, uint64(n)))
		}
	}
	ops = append(ops, read(1, 7, wire.Linearizable, 1000, 1001, 3, 3)) // long after count 20
	v := Linearizable(ops, time.Minute, html)
	if v.Pass || len(v.Errors) == 0 || !strings.Contains(v.Errors[0], "customer 7:") {
		t.Fatalf("verdict %+v: want customer 7 named", v)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(page), "customer 8") || !strings.Contains(string(page), "customer 7") {
		t.Fatal("the page does not hold customer 7's operations alone")
	}
}

func TestSessionCheck(t *testing.T) {
	ok := []model.Op{order(0, 1, 1, 0, 1, model.OK, 1), read(0, 1, wire.Session, 2, 3, 1, 1), read(1, 1, wire.Session, 2, 3, 0, wire.NoOrder)}
	if v := Sessions(ok); !v.Pass {
		t.Fatalf("another client's session read need not see client 0's write: %v", v.Errors)
	}
	ryw := []model.Op{order(0, 1, 1, 0, 1, model.OK, 1), read(0, 1, wire.Session, 2, 3, 0, wire.NoOrder)}
	if v := Sessions(ryw); v.Pass {
		t.Fatal("a session read that missed the client's own write was accepted")
	}
	mono := []model.Op{read(0, 1, wire.Linearizable, 0, 1, 5, 5), read(0, 1, wire.Session, 2, 3, 4, 4)}
	if v := Sessions(mono); v.Pass {
		t.Fatal("a session read that went back behind an earlier read was accepted")
	}
}
