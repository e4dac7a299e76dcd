package failpoint

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"orderly/client"
	"orderly/harness"
	"orderly/internal/wait"
	"orderly/wire"
)

// Nemesis kinds.
const (
	KillLeader = "kill-leader" // SIGKILL the leader, restart it later
	KillAny    = "kill"        // SIGKILL a random node, restart it later
	Pause      = "pause"       // SIGSTOP a node (the leader half the time), SIGCONT later
	Partition  = "partition"   // cut the leader's Raft traffic both ways, heal later
	Member     = "member"      // remove a follower from the cluster, add it back later
	Wipe       = "wipe"        // SIGKILL a node and delete its data; later start it empty and wait until it caught up
	RestartAll = "restart-all" // SIGKILL every node at once, restart them all later
	Transfer   = "transfer"    // leadership transfers back to back
	SlowDisk   = "slow-disk"   // 20-200 ms per log write on one node (the leader half the time); faults builds
	DiskFull   = "disk-full"   // fill the filesystem under a node's data dir (the leader half the time), free it later
	Move       = "move"        // shard replicas moved back to back, to and from any node (sharded clusters, --replicas < nodes)
	Balance    = "balance"     // orderctl shards balance (sharded clusters)
)

// AllNemeses is every kind, in the order a run cycles through them.
var AllNemeses = []string{KillLeader, Pause, Partition, KillAny, Member, Wipe, RestartAll, Transfer, SlowDisk, DiskFull}

// ShardNemeses need a sharded cluster; "all" does not include them.
var ShardNemeses = []string{Move, Balance}

// LocalOnly are the kinds the compose cluster cannot take: its image has
// no fault switches and its volumes are on the host's disk.
var LocalOnly = []string{SlowDisk, DiskFull}

// AllTarget is the target id of a fault on every node.
const AllTarget = "all"

// ParseNemeses parses a comma-separated list of kinds ("all" for every
// one but the shard nemeses: "all,move,balance" adds them).
func ParseNemeses(s string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "all":
			out = append(out, AllNemeses...)
		case slices.Contains(AllNemeses, k), slices.Contains(ShardNemeses, k):
			out = append(out, k)
		default:
			return nil, fmt.Errorf("nemesis %q: want %s, %s or all", k, strings.Join(AllNemeses, ", "), strings.Join(ShardNemeses, ", "))
		}
	}
	return out, nil
}

// Fault is one injected fault.
type Fault struct {
	Kind   string        `json:"kind"`
	Target string        `json:"target"` // node id
	Leader bool          `json:"leader"` // the target led when the fault began
	Start  time.Duration `json:"start_ns"`
	End    time.Duration `json:"end_ns"`
	Err    string        `json:"err,omitempty"`
	// Recovered is how long after End the target had caught up with the
	// leader's commit index (every node for restart-all); -1: not within
	// the nemesis's recovery bound.
	Recovered time.Duration `json:"recovered_ns"`
	// Elections is how many terms passed during the fault (slow-disk must
	// cause none).
	Elections uint64 `json:"elections"`
}

// Config configures a Nemesis.
type Config struct {
	Kinds []string  // the nemeses to cycle through
	Seed  uint64    // of the schedule and the targets
	Start time.Time // the run's start; Fault times count from it
	Logf  func(string, ...any)
	// RecoverWithin bounds the wait for a healed target to catch up.
	RecoverWithin time.Duration
	// SkipHeal is the checker's own test: faults are never healed during
	// the run (only by Target.HealAll at its end), so nodes do not recover.
	SkipHeal bool
}

// New returns a nemesis that hurts t.
func New(t Target, cfg Config) *Nemesis {
	return &Nemesis{t: t, kinds: cfg.Kinds, rng: rand.New(rand.NewPCG(cfg.Seed, 0xfa17)), start: cfg.Start, logf: cfg.Logf,
		recoverWithin: cfg.RecoverWithin, skipHeal: cfg.SkipHeal}
}

// Nemesis injects faults on a schedule drawn from the seed: a quiet
// spell, a fault for a few seconds, heal, and again, cycling through the
// kinds so each occurs.
type Nemesis struct {
	t             Target
	kinds         []string
	rng           *rand.Rand
	start         time.Time
	logf          func(string, ...any)
	recoverWithin time.Duration
	skipHeal      bool

	faults []Fault
	// unfinished is a move that ended in an error: a move is run again
	// until done (it may have stopped at any step), so the next move
	// nemesis runs it first.
	unfinished *shardMove
}

// shardMove is one replica move.
type shardMove struct {
	shard    uint32
	from, to string
}

// Faults are the faults injected so far; call it after Run returned.
func (n *Nemesis) Faults() []Fault { return n.faults }

// Run injects faults until ctx ends; the fault in place then is healed
// before it returns.
func (n *Nemesis) Run(ctx context.Context) {
	order := slices.Clone(n.kinds)
	n.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; ; i++ {
		// A quiet spell of 1-3 s, a fault held 2-5 s, then the wait for
		// the target to catch up: about 200 faults in 30 minutes.
		if !wait.Sleep(ctx, time.Duration(1000+n.rng.IntN(2000))*time.Millisecond) {
			return
		}
		kind := order[i%len(order)]
		hold := time.Duration(2000+n.rng.IntN(3000)) * time.Millisecond
		f := n.inject(ctx, kind, hold)
		f.Recovered = n.recovered(f)
		n.faults = append(n.faults, f)
		n.logf("nemesis: %s on %s (leader %v) for %v, caught up %v after %s", f.Kind, f.Target, f.Leader,
			(f.End - f.Start).Round(time.Millisecond), f.Recovered.Round(time.Millisecond), f.Err)
	}
}

// inject applies one fault, holds it, and heals it, even when ctx ends.
func (n *Nemesis) inject(ctx context.Context, kind string, hold time.Duration) (f Fault) {
	f.Kind = kind
	defer func() { f.End = time.Since(n.start) }()
	leader := n.t.Leader(ctx)
	target := leader
	ids := n.t.Nodes()
	switch {
	case kind == Member:
		target = n.follower(ids, leader)
	case kind == RestartAll, kind == Transfer, kind == Move, kind == Balance:
		target = AllTarget
	case kind == KillAny, kind == Wipe, target == "",
		(kind == Pause || kind == SlowDisk || kind == DiskFull) && n.rng.IntN(2) == 1:
		target = ids[n.rng.IntN(len(ids))]
	}
	f.Target, f.Leader = target, target == leader
	termBefore := n.term(ctx)
	defer func() {
		if kind != SlowDisk {
			return
		}
		// Asked even when the run has ended (the fault was healed then
		// too). The highest term any node reports can only fall if the
		// node that had it does not answer: then no count is made.
		if after := n.term(context.WithoutCancel(ctx)); after > termBefore {
			f.Elections = after - termBefore
		}
	}()
	var heal func(string) error
	var err error
	switch kind {
	case RestartAll:
		err, heal = n.each(ids, n.t.Kill), func(string) error { return n.each(ids, n.t.Restart) }
	case Transfer:
		heal = func(string) error { return nil }
		defer func() { // back to back for the whole hold
			for ctx.Err() == nil && time.Since(n.start) < f.Start+hold {
				if err := n.admin(wire.TransferLeader{}); err != nil {
					f.Err = "transfer: " + err.Error()
				}
			}
		}()
	case Move, Balance:
		heal = func(string) error { return nil }
		defer func() { // back to back for the whole hold
			for ctx.Err() == nil && time.Since(n.start) < f.Start+hold {
				if err := n.shardChange(ctx, kind); err != nil {
					f.Err = kind + ": " + err.Error()
					return
				}
				wait.Sleep(ctx, 200*time.Millisecond) // a balanced cluster answers at once
			}
		}()
	case SlowDisk:
		err, heal = n.t.SlowDisk(target, true), func(id string) error { return n.t.SlowDisk(id, false) }
	case DiskFull:
		err, heal = n.t.FillDisk(target), n.t.FreeDisk
	case KillLeader, KillAny:
		err, heal = n.t.Kill(target), n.t.Restart
	case Pause:
		err, heal = n.t.Pause(target), n.t.Resume
	case Partition:
		err, heal = n.t.Cut(target), n.t.Heal
	case Member:
		err, heal = n.admin(wire.RemoveMember{ID: target}), func(id string) error {
			return n.admin(wire.AddMember{ID: id, RaftAddr: n.t.RaftAddr(id), Voter: true})
		}
	case Wipe:
		// Healed only once caught up: a second lost disk before that is a
		// lost quorum, which no nemesis here means to cause.
		err, heal = n.t.Wipe(target), func(id string) error {
			if err := n.t.Rebuild(id); err != nil {
				return err
			}
			return n.waitCaughtUp(id, time.Minute)
		}
	}
	f.Start = time.Since(n.start) // the fault is in place from now
	if err != nil {
		f.Err = err.Error()
		if kind == Member {
			// A removal that failed may still have been committed (leadership
			// lost mid-commit, then "not a member" on the retry): add the node
			// back regardless, or the rest of the run has one voter less.
			if herr := heal(target); herr != nil {
				f.Err += "; heal: " + herr.Error()
			}
		}
		return f
	}
	if kind == Transfer || kind == Move || kind == Balance {
		return f // the deferred loop is the fault
	}
	wait.Sleep(ctx, hold)
	if n.skipHeal {
		return f
	}
	if err := heal(target); err != nil {
		f.Err = "heal: " + err.Error()
	}
	return f
}

// each runs fn on every id and returns the first error.
func (n *Nemesis) each(ids []string, fn func(string) error) error {
	var first error
	for _, id := range ids {
		if err := fn(id); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", id, err)
		}
	}
	return first
}

// term is the highest term any node reports (0 if none answers).
func (n *Nemesis) term(ctx context.Context) uint64 {
	var t uint64
	for _, id := range n.t.Nodes() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		if st, err := harness.Status(sctx, n.t.ClientAddr(id), n.t.TLS()); err == nil {
			t = max(t, st.Term)
		}
		cancel()
	}
	return t
}

// recovered waits until the fault's target (every node for a fault on
// all) has caught up, and says how long after the fault ended that was.
func (n *Nemesis) recovered(f Fault) time.Duration {
	ids := []string{f.Target}
	if f.Target == AllTarget {
		ids = n.t.Nodes()
	}
	for _, id := range ids {
		if err := n.waitCaughtUp(id, n.recoverWithin); err != nil {
			n.logf("nemesis: %s did not recover after %s: %v", id, f.Kind, err)
			return -1
		}
	}
	return time.Since(n.start) - f.End
}

// waitCaughtUp waits until node id knows as committed what the leader had
// committed when the wait began. Its commit index, not its FSM's applied
// index: that stops short of a trailing barrier or no-op (docs/reads.md).
func (n *Nemesis) waitCaughtUp(id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	want := uint64(0)
	for {
		if want == 0 {
			if l := n.t.Leader(ctx); l != "" {
				if st, err := harness.Status(ctx, n.t.ClientAddr(l), n.t.TLS()); err == nil {
					want = st.CommitIndex
				}
			}
		}
		if st, err := harness.Status(ctx, n.t.ClientAddr(id), n.t.TLS()); err == nil && want > 0 && st.Term > 0 && st.CommitIndex >= want {
			return nil
		}
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("%s not caught up to index %d within %v", id, want, timeout)
		}
	}
}

// follower picks a node other than the leader.
func (n *Nemesis) follower(ids []string, leader string) string {
	var fs []string
	for _, id := range ids {
		if id != leader {
			fs = append(fs, id)
		}
	}
	if len(fs) == 0 {
		return ids[0]
	}
	return fs[n.rng.IntN(len(fs))]
}

// admin sends a membership change to the leader, following NotLeader.
func (n *Nemesis) admin(req wire.Message) error {
	c, err := client.New(client.Options{Addrs: n.t.ClientAddrs(), RetryTimeout: 20 * time.Second, DialTimeout: 20 * time.Second, TLS: n.t.TLS()})
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Admin(context.Background(), req)
}

// shardChange moves one replica (Move: a move an error cut short, run
// again; else a random shard, from one of its replicas, the leader half
// the time, to a node that holds none) or balances the shards (Balance).
func (n *Nemesis) shardChange(ctx context.Context, kind string) error {
	c, err := client.New(client.Options{Addrs: n.t.ClientAddrs(), RetryTimeout: 20 * time.Second, DialTimeout: 20 * time.Second, TLS: n.t.TLS()})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	say := func(step string) { n.logf("nemesis %s: %s", kind, step) }
	if kind == Balance {
		return c.BalanceShards(ctx, say)
	}
	mv, again := n.unfinished, n.unfinished != nil
	n.unfinished = nil
	if !again {
		if mv, err = n.pickMove(ctx, c); err != nil {
			return err
		}
	}
	if err := c.MoveShard(ctx, mv.shard, mv.from, mv.to, say); err != nil {
		if again { // once: a move that fails twice is the finding
			return fmt.Errorf("shard %d from %s to %s, run again: %w", mv.shard, mv.from, mv.to, err)
		}
		n.unfinished = mv
		return fmt.Errorf("shard %d from %s to %s (to be run again): %w", mv.shard, mv.from, mv.to, err)
	}
	if again {
		say(fmt.Sprintf("the move of shard %d from %s to %s, cut short before, is done", mv.shard, mv.from, mv.to))
	}
	return nil
}

// pickMove draws a move: a random shard, from one of its replicas (the
// leader half the time) to a node that holds none.
func (n *Nemesis) pickMove(ctx context.Context, c *client.Client) (*shardMove, error) {
	m, err := c.ShardMap(ctx)
	if err != nil {
		return nil, err
	}
	if len(m.Shards) < 2 {
		return nil, errors.New("not a sharded cluster")
	}
	s := m.Shards[n.rng.IntN(len(m.Shards))]
	var holders, others []string
	for _, r := range s.Replicas {
		holders = append(holders, r.ID)
	}
	for _, id := range n.t.Nodes() {
		if !slices.Contains(holders, id) {
			others = append(others, id)
		}
	}
	if len(others) == 0 || len(holders) == 0 {
		return nil, fmt.Errorf("shard %d is on every node: nowhere to move it (--replicas must be below the nodes)", s.ID)
	}
	from := holders[n.rng.IntN(len(holders))]
	if s.Leader != "" && n.rng.IntN(2) == 0 {
		from = s.Leader
	}
	return &shardMove{shard: s.ID, from: from, to: others[n.rng.IntN(len(others))]}, nil
}
