package raftnode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/faults"
	"orderly/serve"
	"orderly/wire"
)

// The disk alarm (etcd's NOSPACE, but it clears by itself). Every node
// looks at its own disk twice a second: free space under the data dir
// below --min-free, or a log write that failed with ENOSPC, raises its
// alarm. Followers report theirs to the leader (ReportAlarms, over the
// peer connection, no disk needed); the leader refuses new orders with
// NoSpace while any member has an alarm, and every node learns the
// cluster's alarms in the leader's answer. Reads go on. Once the space is
// back the node reports no alarm and orders flow again, no restart and no
// disarm.
//
// Alarms are soft state on purpose: writing an alarm into the Raft log,
// as etcd does, needs the very disk that is full, and a stale entry would
// have to be disarmed by hand. The price: a new leader learns followers'
// alarms within one report period (alarmPeriod) of its election.

// alarmPeriod is how often a node looks at its disk and reports.
const alarmPeriod = 500 * time.Millisecond

// alarmTTL: a follower's alarm the leader has not heard again for this
// long is dropped (the follower died or was removed; its next report
// raises it again).
const alarmTTL = 6 * alarmPeriod

type reportedAlarm struct {
	alarm wire.Alarm
	until time.Time
}

// alarms is one node's view: its own alarm, and the cluster's.
type alarms struct {
	id, dir string
	minFree uint64
	store   *watchedLogStore
	log     hclog.Logger

	mu       sync.Mutex
	own      *wire.Alarm              // nil: none
	reported map[string]reportedAlarm // as leader: followers' alarms
	statErr  bool                     // the last statfs failed (logged once)
	// cluster is every active alarm as this node last knew it: computed
	// as leader, learned from the leader as follower.
	cluster atomic.Pointer[[]wire.Alarm]
	free    atomic.Uint64
}

func newAlarms(id, dir string, minFree uint64, store *watchedLogStore, log hclog.Logger) *alarms {
	a := &alarms{id: id, dir: dir, minFree: minFree, store: store, log: log,
		reported: map[string]reportedAlarm{}}
	a.cluster.Store(&[]wire.Alarm{})
	return a
}

// freeBytes is the space an unprivileged writer may still use under dir.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// check looks at the disk and raises or clears this node's alarm.
func (a *alarms) check(now time.Time) {
	var why string
	free, err := freeBytes(a.dir)
	free, err = faults.FreeSpace(a, free, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil:
		if !a.statErr {
			a.log.Warn("cannot read free space under the data dir: the disk alarm sees only failed writes", "error", err)
		}
		a.statErr = true
	default:
		a.statErr = false
		a.free.Store(free)
		if free < a.minFree {
			why = fmt.Sprintf("%s free under %s, under --min-free %s", mib(free), a.dir, mib(a.minFree))
		}
	}
	if why == "" && a.store.noSpace() {
		why = "a log write failed: no space left on device"
	}
	switch {
	case why != "" && a.own == nil:
		a.own = &wire.Alarm{Member: a.id, Kind: wire.AlarmNoSpace, Message: why, Since: now.UnixNano()}
		a.log.Error("disk alarm raised: the cluster takes no new orders until this node has room again; reads go on", "reason", why)
	case why != "":
		a.own.Message = why
	case a.own != nil:
		a.log.Info("disk alarm cleared: room again", "free", mib(free), "raised_for", now.Sub(time.Unix(0, a.own.Since)).Round(time.Millisecond))
		a.own = nil
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// ownList is this node's alarm as a list (empty: none).
func (a *alarms) ownList() []wire.Alarm {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.own == nil {
		return nil
	}
	return []wire.Alarm{*a.own}
}

// report records a follower's alarms, as leader.
func (a *alarms) report(id string, as []wire.Alarm, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(as) == 0 {
		delete(a.reported, id)
		return
	}
	a.reported[id] = reportedAlarm{alarm: as[0], until: now.Add(alarmTTL)}
}

// lead recomputes the cluster's alarms as leader: its own and its
// followers' that have not expired.
func (a *alarms) lead(now time.Time) []wire.Alarm {
	a.mu.Lock()
	var all []wire.Alarm
	if a.own != nil {
		all = append(all, *a.own)
	}
	for id, r := range a.reported {
		if now.After(r.until) || id == a.id {
			delete(a.reported, id)
			continue
		}
		all = append(all, r.alarm)
	}
	a.mu.Unlock()
	slices.SortFunc(all, func(x, y wire.Alarm) int { return strings.Compare(x.Member, y.Member) })
	a.learn(all)
	return all
}

// follow forgets what this node knew as leader.
func (a *alarms) follow() {
	a.mu.Lock()
	clear(a.reported)
	a.mu.Unlock()
}

func (a *alarms) learn(all []wire.Alarm) { a.cluster.Store(&all) }

// active is the cluster's alarms as this node knows them.
func (a *alarms) active() []wire.Alarm { return *a.cluster.Load() }

// refuseOrders is the leader's answer to an order while an alarm is
// active, nil otherwise.
func (a *alarms) refuseOrders() error {
	all := a.active()
	if len(all) == 0 {
		return nil
	}
	var who []string
	for _, al := range all {
		who = append(who, fmt.Sprintf("%s (%s)", al.Member, al.Message))
	}
	return refuse(ErrNoSpace, "no new orders: disk alarm on %s; reads go on, and orders resume by themselves once there is room",
		strings.Join(who, ", "))
}

// stats are the alarm's lines in status.
func (a *alarms) stats() []wire.Stat {
	own := uint64(0)
	if len(a.ownList()) > 0 {
		own = 1
	}
	return []wire.Stat{{Name: "disk_free_bytes", Value: a.free.Load()}, {Name: "disk_min_free_bytes", Value: a.minFree},
		{Name: "disk_alarm", Value: own}, {Name: "cluster_alarms", Value: uint64(len(a.active()))}}
}

// watchDisk is the node's alarm loop: check the disk, then as leader
// gather the cluster's alarms, as follower report to the leader.
func (n *Node) watchDisk() {
	now := time.Now()
	n.alarms.check(now)
	if n.raft.State() == raft.Leader {
		n.alarms.lead(now)
		return
	}
	n.alarms.follow()
	if err := n.reportAlarms(); err != nil {
		// No leader to tell: what this node knows is its own.
		n.alarms.learn(n.alarms.ownList())
		n.log.Debug("report alarms to the leader", "error", err)
	}
}

func (n *Node) reportAlarms() error {
	ctx, cancel := context.WithTimeout(n.routines.Context(), alarmPeriod)
	defer cancel()
	c, _, err := n.leaderPeer(ctx, n.meta)
	if err != nil {
		return err
	}
	l, err := wire.CallAs[wire.AlarmList](ctx, c, wire.ReportAlarms{ID: n.cfg.ID, Alarms: n.alarms.ownList()}, 0)
	if err != nil {
		return err
	}
	n.alarms.learn(l.Alarms)
	return nil
}

// answerReport takes a follower's ReportAlarms, as leader.
func (n *Node) answerReport(from serve.Caller, r wire.ReportAlarms) (wire.Message, error) {
	if from.Name != "" && r.ID != from.Name {
		return nil, refuse(ErrDenied, "report alarms: node %q may report only its own, not %q's", from.Name, r.ID)
	}
	if len(r.Alarms) > 1 {
		return nil, refuse(ErrInvalid, "report alarms: %d alarms, a node has at most one", len(r.Alarms))
	}
	for _, a := range r.Alarms {
		if a.Member != r.ID || a.Kind != wire.AlarmNoSpace || len(a.Message) > 512 {
			return nil, refuse(ErrInvalid, "report alarms: alarm %q of %q from %q is not one a node raises", a.Kind, a.Member, r.ID)
		}
	}
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	if !n.isMember(r.ID) {
		return nil, refuse(ErrInvalid, "report alarms: %q is not a member", r.ID)
	}
	now := time.Now()
	n.alarms.report(r.ID, r.Alarms, now)
	return wire.AlarmList{Alarms: n.alarms.lead(now)}, nil
}
