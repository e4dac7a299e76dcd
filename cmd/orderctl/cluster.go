package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"orderly/api"
	"orderly/client"
	"orderly/feed"
	"orderly/wire"
)

// statusJSON is a node's status as `status --json` prints it: the HTTP
// API's shape (api.Status), and for --all the address asked and why it
// did not answer.
type statusJSON struct {
	api.Status
	Addr  string `json:"addr,omitempty"`
	Error string `json:"error,omitempty"`
	// Shards, with --all on a sharded cluster: the node's replica of each
	// shard it holds.
	Shards []shardStatusJSON `json:"shards,omitempty"`
}

// shardStatusJSON is one replica of a shard on a node.
type shardStatusJSON struct {
	Shard        uint32 `json:"shard"`
	Role         string `json:"role"`
	LeaderID     string `json:"leader_id"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
}

func toStatusJSON(s wire.StatusInfo) statusJSON { return statusJSON{Status: api.StatusOf(s)} }

func (g *globals) printStatus(s statusJSON) {
	if s.Error != "" {
		fmt.Fprintf(g.Out, "%s: %s\n", s.Addr, s.Error)
		return
	}
	name := s.ID
	if s.Addr != "" {
		name += " (" + s.Addr + ")"
	}
	fmt.Fprintf(g.Out, "%s: %s, term %d, leader %s at %s, commit %d, applied %d, last %d\n",
		name, s.Role, s.Term, s.LeaderID, s.LeaderAddr, s.CommitIndex, s.AppliedIndex, s.LastIndex)
	for _, r := range s.Shards {
		fmt.Fprintf(g.Out, "  shard %-3d %-9s term %d, leader %s, commit %d, applied %d, last %d\n",
			r.Shard, r.Role, r.Term, r.LeaderID, r.CommitIndex, r.AppliedIndex, r.LastIndex)
	}
	for _, m := range s.Members {
		if s.Role == "balancer" {
			state := "down"
			if s.Stats[backendUp+m.ClientAddr] == 1 {
				state = "up"
			}
			fmt.Fprintf(g.Out, "  backend %-8s %-21s %s\n", m.ID, m.ClientAddr, state)
			continue
		}
		fmt.Fprintf(g.Out, "  member %-8s raft %-21s client %-21s voter %v\n", m.ID, m.RaftAddr, m.ClientAddr, m.Voter)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Stats)) {
		if !strings.HasPrefix(k, backendUp) {
			fmt.Fprintf(g.Out, "  %s: %d\n", k, s.Stats[k])
		}
	}
}

// backendUp prefixes the balancer's per-backend health stat.
const backendUp = "backend_up "

func statusCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "status [--all]",
		Short: "describe a node or balancer (--all: every address, and every node behind a balancer)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				if !all {
					s, err := c.Status(ctx)
					if err != nil {
						return fmt.Errorf("status: %w", err)
					}
					out := toStatusJSON(s)
					if g.JSON {
						return g.Print(out, "")
					}
					g.printStatus(out)
					return nil
				}
				list := g.statusAll(ctx, c)
				if g.JSON {
					return g.Print(list, "")
				}
				for _, s := range list {
					g.printStatus(s)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "ask every address, and every node a balancer knows, not only the first that answers")
	return cmd
}

// shardsOf is addr's replicas of a sharded cluster's shards (none of a
// cluster of one shard, or of a node of an earlier release).
func (g *globals) shardsOf(ctx context.Context, c *client.Client, addr string) []shardStatusJSON {
	m, err := c.ShardMap(ctx)
	if err != nil || len(m.Shards) < 2 {
		return nil
	}
	var out []shardStatusJSON
	for _, sh := range m.Shards {
		st, err := c.ShardStatusOf(ctx, addr, sh.ID)
		if err != nil || st.Role == "none" {
			continue
		}
		out = append(out, shardStatusJSON{Shard: sh.ID, Role: st.Role, LeaderID: st.LeaderID, Term: st.Term,
			CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex})
	}
	return out
}

// statusAll asks every address; a balancer adds the nodes behind it, so
// that status --all through a balancer lists the whole cluster.
func (g *globals) statusAll(ctx context.Context, c *client.Client) []statusJSON {
	queue := slices.Clone(g.Addrs)
	seen := map[string]bool{}
	var list []statusJSON
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		if seen[a] {
			continue
		}
		seen[a] = true
		s, err := c.StatusOf(ctx, a)
		out := toStatusJSON(s)
		out.Addr = a
		if err != nil {
			out.Error = err.Error()
		}
		if err == nil && s.Role != "balancer" {
			out.Shards = g.shardsOf(ctx, c, a)
		}
		list = append(list, out)
		if s.Role == "balancer" {
			for _, m := range s.Members {
				queue = append(queue, m.ClientAddr)
			}
		}
	}
	return list
}

func membersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "members", Short: "list, add or remove members", Args: cobra.NoArgs}
	list := &cobra.Command{
		Use: "list", Short: "list the members", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				ms, err := c.Members(ctx)
				if err != nil {
					return fmt.Errorf("members list: %w", err)
				}
				out := api.MembersOf(ms)
				if g.JSON {
					return g.Print(out, "")
				}
				for _, m := range out {
					fmt.Fprintf(g.Out, "%-8s raft %-21s client %-21s voter %v\n", m.ID, m.RaftAddr, m.ClientAddr, m.Voter)
				}
				return nil
			})
		},
	}
	var id, raftAddr string
	var nonvoter bool
	add := &cobra.Command{
		Use: "add --id ID --raft-addr A [--nonvoter]", Short: "add a member (start it first, with an empty data dir and no --peers)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.admin("members add", wire.AddMember{ID: id, RaftAddr: raftAddr, Voter: !nonvoter})
		},
	}
	add.Flags().StringVar(&id, "id", "", "the new member's id")
	add.Flags().StringVar(&raftAddr, "raft-addr", "", "the new member's Raft address")
	add.Flags().BoolVar(&nonvoter, "nonvoter", false, "add as a non-voting member")
	must(add.MarkFlagRequired("id"), add.MarkFlagRequired("raft-addr"))
	var rid string
	remove := &cobra.Command{
		Use: "remove --id ID", Short: "remove a member", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return g.admin("members remove", wire.RemoveMember{ID: rid}) },
	}
	remove.Flags().StringVar(&rid, "id", "", "the member's id")
	must(remove.MarkFlagRequired("id"))
	cmd.AddCommand(list, add, remove)
	return cmd
}

func alarmCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "alarm", Short: "the cluster's alarms (a disk under --min-free stops new orders)", Args: cobra.NoArgs}
	list := &cobra.Command{
		Use: "list", Short: "list the active alarms (they clear by themselves)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				as, err := c.Alarms(ctx)
				if err != nil {
					return fmt.Errorf("alarm list: %w", err)
				}
				out := make([]alarmJSON, 0, len(as))
				for _, a := range as {
					out = append(out, alarmJSON{Member: a.Member, Kind: a.Kind, Message: a.Message, Since: time.Unix(0, a.Since).UTC()})
				}
				if g.JSON {
					return g.Print(out, "")
				}
				if len(out) == 0 {
					fmt.Fprintln(g.Out, "no alarms")
				}
				for _, a := range out {
					fmt.Fprintf(g.Out, "%-8s %-8s since %s  %s\n", a.Member, a.Kind, a.Since.Format(time.RFC3339), a.Message)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(list)
	return cmd
}

type alarmJSON struct {
	Member  string    `json:"member"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}

func transferCmd(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "transfer-leader [--to ID]",
		Short: "hand leadership over",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return g.admin("transfer-leader", wire.TransferLeader{ID: to}) },
	}
	cmd.Flags().StringVar(&to, "to", "", "id of the new leader (default: any up-to-date voter)")
	return cmd
}

// admin sends one membership or leadership request to the leader.
func (g *globals) admin(what string, req wire.Message) error {
	return g.withClient(func(ctx context.Context, c *client.Client) error {
		if err := c.Admin(ctx, req); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return g.Print(map[string]string{"result": "ok"}, "ok\n")
	})
}

func watchCmd(g *globals) *cobra.Command {
	var customer int32
	var from uint64
	var fromPositions string
	var count int
	var forD time.Duration
	cmd := &cobra.Command{
		Use:   "watch [--customer C] [--from-index I | --from-positions P0.P1...] [--count N] [--for D]",
		Short: "follow every applied order in index order (the change feed), resuming after a lost connection",
		Long: `Follows the change feed. Every customer of a sharded cluster is watched
shard by shard: each line names its shard, indexes are the shard's own,
and --from-positions resumes with one index per shard (what a Compacted
end prints).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := g.newClient(0)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			if forD > 0 {
				ctx, cancel = context.WithTimeout(ctx, forD)
				defer cancel()
			}
			shards := uint32(1)
			if customer == wire.WatchAll {
				if shards, err = c.ShardCount(ctx); err != nil {
					return fmt.Errorf("watch: %w", err)
				}
			}
			w := eventWriter{g: g, count: count, sharded: shards > 1}
			if shards == 1 {
				if fromPositions != "" {
					return fmt.Errorf("watch: --from-positions is for every customer of a sharded cluster; use --from-index")
				}
				err = c.Watch(ctx, from, customer, func(e wire.Events) error { return w.write(0, e) })
				return watchEnd(err, func(oldest uint64) string { return fmt.Sprintf("--from-index %d", oldest) })
			}
			if from != 0 {
				return fmt.Errorf("watch: a cluster of %d shards has an index per shard: use --from-positions", shards)
			}
			pos := make([]uint64, shards)
			if fromPositions != "" {
				if pos, err = feed.ParsePositions(fromPositions, shards); err != nil {
					return fmt.Errorf("watch: --from-positions %q: %w", fromPositions, err)
				}
			}
			err = c.WatchShards(ctx, slices.Clone(pos), func(sh uint32, e wire.Events) error {
				pos[sh] = e.Through + 1
				return w.write(sh, e)
			})
			var se *feed.ShardError
			if errors.As(err, &se) {
				return watchEnd(err, func(oldest uint64) string {
					pos[se.Shard] = oldest
					return "--from-positions " + feed.FormatPositions(pos)
				})
			}
			return watchEnd(err, nil)
		},
	}
	cmd.Flags().Int32Var(&customer, "customer", wire.WatchAll, "only this customer's orders (-1: every customer)")
	cmd.Flags().Uint64Var(&from, "from-index", 0, "start at this Raft index (0: from now)")
	cmd.Flags().StringVar(&fromPositions, "from-positions", "", "every customer of a sharded cluster: start shard i at the i-th index (P0.P1...; 0: from now)")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many orders (0: no limit)")
	cmd.Flags().DurationVar(&forD, "for", 0, "stop after this long (0: until interrupted)")
	return cmd
}

// errWatchDone ends a watch that has printed --count orders.
var errWatchDone = errors.New("done")

// eventWriter prints a watch's orders, up to count (0: no limit).
type eventWriter struct {
	g       *globals
	count   int
	seen    int
	sharded bool
}

func (w *eventWriter) write(sh uint32, e wire.Events) error {
	for _, ev := range e.Events {
		if w.g.JSON {
			j := eventJSON{Index: ev.Index, Customer: ev.CustomerID, Order: ev.OrderNumber, Type: ev.LaptopType.String(),
				Engineer: ev.EngineerID, Expert: ev.ExpertID, OrderCount: ev.OrderCount}
			if w.sharded {
				j.Shard = &sh
			}
			if err := w.g.Print(j, ""); err != nil {
				return err
			}
		} else {
			if w.sharded {
				fmt.Fprintf(w.g.Out, "shard %d ", sh)
			}
			fmt.Fprintf(w.g.Out, "%d customer %d order %d (%s) engineer %d expert %d, %d orders\n",
				ev.Index, ev.CustomerID, ev.OrderNumber, ev.LaptopType, ev.EngineerID, ev.ExpertID, ev.OrderCount)
		}
		if w.seen++; w.count > 0 && w.seen >= w.count {
			return errWatchDone
		}
	}
	return nil
}

// watchEnd is the command's answer to how the watch ended; resume names
// the flag to resume a compacted watch with.
func watchEnd(err error, resume func(oldest uint64) string) error {
	var compacted wire.Compacted
	switch {
	case err == nil, errors.Is(err, errWatchDone):
		return nil
	case errors.As(err, &compacted) && resume != nil:
		return fmt.Errorf("watch: %w; resume with %s after re-reading the state (orderctl scan)", err, resume(compacted.Oldest))
	}
	return fmt.Errorf("watch: %w", err)
}

type eventJSON struct {
	Index      uint64  `json:"index"`
	Customer   int32   `json:"customer"`
	Order      int32   `json:"order"`
	Type       string  `json:"type"`
	Engineer   int32   `json:"engineer"`
	Expert     int32   `json:"expert"`
	OrderCount uint64  `json:"order_count"`
	Shard      *uint32 `json:"shard,omitempty"` // every customer of a sharded cluster
}
