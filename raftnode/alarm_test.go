//go:build faults

package raftnode

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/faults"
	"orderly/wire"
)

// TestDiskAlarmStopsOrdersNotReads: a follower's disk falls under
// --min-free; the leader learns it from the follower's report and answers
// orders NoSpace while reads go on; with room again, orders resume with no
// restart, and every acknowledged order is there.
func TestDiskAlarmStopsOrdersNotReads(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	follower := tc.followerOf(leader)
	if r, ok := call(t, leader, wire.Order{CustomerID: 1, OrderNumber: 1, ClientID: 7, Seq: 1}).(wire.LaptopInfo); !ok || r.OrderCount != 1 {
		t.Fatalf("order before the alarm: %v", r)
	}
	low := uint64(1 << 20)
	faults.SetFreeSpace(follower.alarms, &low)
	var refused *wire.Error
	waitUntil(t, 5*time.Second, "the leader to refuse orders", func() bool {
		resp := call(t, leader, wire.Order{CustomerID: 2, OrderNumber: 1, ClientID: 8, Seq: 1})
		refused, _ = resp.(*wire.Error)
		return refused != nil && refused.Code == wire.CodeNoSpace
	})
	if !strings.Contains(refused.Message, follower.cfg.ID) || !strings.Contains(refused.Message, "--min-free") {
		t.Fatalf("NoSpace does not say which node and why: %q", refused.Message)
	}
	for _, n := range tc.nodes {
		if rec, ok := call(t, n, wire.Get{CustomerID: 1, Consistency: wire.Linearizable}).(wire.Record); !ok || rec.OrderCount != 1 {
			t.Fatalf("%s: linearizable read under the alarm: %v", n.cfg.ID, rec)
		}
	}
	waitUntil(t, 5*time.Second, "every node to list the alarm", func() bool {
		for _, n := range tc.nodes {
			l, ok := call(t, n, wire.Alarms{}).(wire.AlarmList)
			if !ok || len(l.Alarms) != 1 || l.Alarms[0].Member != follower.cfg.ID || l.Alarms[0].Kind != wire.AlarmNoSpace {
				return false
			}
		}
		return true
	})
	if err := follower.Ready(); err == nil || !strings.Contains(err.Error(), "disk alarm") {
		t.Fatalf("the full node says it is ready: %v", err)
	}
	if st := statOf(follower.Status(), "disk_alarm"); st != 1 {
		t.Fatalf("status disk_alarm = %d on the full node", st)
	}

	faults.SetFreeSpace(follower.alarms, nil)
	waitUntil(t, 5*time.Second, "orders to resume", func() bool {
		_, ok := call(t, leader, wire.Order{CustomerID: 2, OrderNumber: 1, ClientID: 8, Seq: 1}).(wire.LaptopInfo)
		return ok
	})
	if l := call(t, leader, wire.Alarms{}).(wire.AlarmList); len(l.Alarms) != 0 {
		t.Fatalf("alarms after the space came back: %+v", l.Alarms)
	}
}

// TestReportAlarmsIsChecked: a node may report only its own alarm, of a
// kind nodes raise, and only a member may.
func TestReportAlarmsIsChecked(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	as := func(name string, r wire.ReportAlarms) wire.Message {
		return leader.handle(t.Context(), callerNode(name), r)
	}
	forged := wire.ReportAlarms{ID: "n2", Alarms: []wire.Alarm{{Member: "n2", Kind: wire.AlarmNoSpace, Message: "x"}}}
	if e, ok := as("n3", forged).(*wire.Error); !ok || e.Code != wire.CodePermissionDenied {
		t.Fatalf("n3 reporting n2's alarm: %v", e)
	}
	other := wire.ReportAlarms{ID: "n2", Alarms: []wire.Alarm{{Member: "n1", Kind: wire.AlarmNoSpace}}}
	if e, ok := as("n2", other).(*wire.Error); !ok || e.Code != wire.CodeBadRequest {
		t.Fatalf("n2 reporting an alarm of n1: %v", e)
	}
	if e, ok := as("n9", wire.ReportAlarms{ID: "n9"}).(*wire.Error); !ok || e.Code != wire.CodePermissionDenied {
		t.Fatalf("a non-member reporting: %v", e)
	}
	if len(leader.alarms.active()) != 0 {
		t.Fatalf("refused reports raised alarms: %+v", leader.alarms.active())
	}
}

// TestAlarmExpires: a follower's alarm the leader stops hearing about
// (the node died) is dropped after alarmTTL.
func TestAlarmExpires(t *testing.T) {
	a := newAlarms("n1", t.TempDir(), 0, &watchedLogStore{}, hclog.NewNullLogger())
	now := time.Now()
	a.report("n2", []wire.Alarm{{Member: "n2", Kind: wire.AlarmNoSpace}}, now)
	if got := a.lead(now); len(got) != 1 {
		t.Fatalf("alarms %+v, want n2's", got)
	}
	if a.refuseOrders() == nil {
		t.Fatal("orders not refused under an alarm")
	}
	if got := a.lead(now.Add(alarmTTL + time.Millisecond)); len(got) != 0 {
		t.Fatalf("alarms %+v after the TTL", got)
	}
	if a.refuseOrders() != nil {
		t.Fatal("orders refused with no alarm")
	}
}
