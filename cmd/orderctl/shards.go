package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"orderly/api"
	"orderly/client"
)

func shardsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "shards", Short: "the cluster's shards", Args: cobra.NoArgs}
	list := &cobra.Command{
		Use: "list", Short: "list the shards: the customers each holds (hash slots), its leader, epoch and replicas", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				m, err := c.ShardMap(ctx)
				if err != nil {
					return fmt.Errorf("shards list: %w", err)
				}
				out := api.ShardsOf(m)
				if g.JSON {
					return g.Print(map[string][]api.Shard{"shards": out}, "")
				}
				for _, s := range out {
					var reps []string
					for _, r := range s.Replicas {
						if r.Voter {
							reps = append(reps, r.ID)
						} else {
							reps = append(reps, r.ID+" (nonvoter)")
						}
					}
					leader := s.Leader
					if leader == "" {
						leader = "-"
					}
					fmt.Fprintf(g.Out, "shard %-3d %-17s leader %-8s epoch %-6d replicas %s\n", s.ID, s.Customers, leader, s.Epoch, strings.Join(reps, ","))
				}
				return nil
			})
		},
	}
	var id uint32
	var from, to string
	move := &cobra.Command{
		Use:   "move --shard S --from A --to B",
		Short: "move shard S's replica from node A to node B",
		Long: `move shard S's replica from node A to node B, under load: B joins as a
non-voter, catches up, is promoted; A hands leadership over if it leads,
and is removed. Each step is checked against the shard map first, so a
move cut off in the middle (a node killed, this command stopped) is
finished by running it again.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				return c.MoveShard(ctx, id, from, to, func(step string) { fmt.Fprintln(g.Out, step) })
			})
		},
	}
	move.Flags().Uint32Var(&id, "shard", 0, "the shard's id (orderctl shards list)")
	move.Flags().StringVar(&from, "from", "", "the node that holds a replica now")
	move.Flags().StringVar(&to, "to", "", "the node that takes it (a member holding none)")
	must(move.MarkFlagRequired("shard"), move.MarkFlagRequired("from"), move.MarkFlagRequired("to"))
	balance := &cobra.Command{
		Use:   "balance",
		Short: "spread the shards' replicas, then their leaders, evenly over the nodes",
		Long: `spread the shards' replicas, then their leaders, evenly over the nodes:
while a node holds two more replicas (or leads two more shards) than
another, a replica moves (as shards move does) or a leadership is handed
over. Run it after members add, and after restarts, which leave leaders
wherever the elections fell. Give --timeout room for the moves.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				return c.BalanceShards(ctx, func(step string) { fmt.Fprintln(g.Out, step) })
			})
		},
	}
	cmd.AddCommand(list, move, balance)
	return cmd
}
