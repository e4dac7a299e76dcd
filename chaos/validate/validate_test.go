package validate

import (
	"path/filepath"
	"testing"
	"time"

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
		final             uint64
		lostOK, dupOK     bool
		doubleApplyReport []string
	}{
		{1, true, true, nil}, {2, true, true, nil}, // the unknown order may or may not be there
		{0, false, true, nil}, // an acknowledged order is missing
		{3, true, false, nil}, // more than acknowledged + unknown
		{2, true, false, []string{"a resend applied again"}},
	} {
		lost, dup := Counts(ops, map[int32]uint64{1: tc.final}, tc.doubleApplyReport)
		if lost.Pass != tc.lostOK || dup.Pass != tc.dupOK {
			t.Errorf("final count %d: lost %v (%s), dup %v (%s)", tc.final, lost.Pass, lost.Detail, dup.Pass, dup.Detail)
		}
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
