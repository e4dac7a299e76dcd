package main

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/spf13/cobra"

	"orderly/client"
	"orderly/wire"
)

func parseLaptopType(s string) (wire.LaptopType, error) {
	switch s {
	case "regular":
		return wire.Regular, nil
	case "custom":
		return wire.Custom, nil
	}
	return 0, fmt.Errorf("--type %q: want regular or custom", s)
}

// int32Flag checks that a flag value fits the protocol's int32 ids.
func int32Flag(name string, v int64) (int32, error) {
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("--%s %d: must be between 0 and %d", name, v, math.MaxInt32)
	}
	return int32(v), nil
}

func orderCmd(g *globals) *cobra.Command {
	var customer, number int64
	var typ string
	var clientID uint64
	cmd := &cobra.Command{
		Use:   "order --customer C --number N [--type regular|custom] [--client-id ID]",
		Short: "place an order",
		Long: `place an order, as the first write (seq 1) of a client id.
If its outcome is unknown (the order may have been applied: exit status 3),
run the same command with the --client-id it printed: the cluster applies
the order at most once and answers the first answer if it was applied.
Any other error (exit status 1) means it was not applied.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cid, err := int32Flag("customer", customer)
			if err != nil {
				return err
			}
			num, err := int32Flag("number", number)
			if err != nil {
				return err
			}
			lt, err := parseLaptopType(typ)
			if err != nil {
				return err
			}
			return g.withClientID(clientID, func(ctx context.Context, c *client.Client) error {
				li, err := c.Order(ctx, cid, num, lt)
				if errors.Is(err, client.ErrUnknownOutcome) {
					return fmt.Errorf("order: %w\nit may have been applied; settle it with the same command and --client-id %d", err, c.ID())
				}
				if err != nil {
					return fmt.Errorf("order: %w", err)
				}
				return g.Print(laptopJSON{li.CustomerID, li.OrderNumber, li.LaptopType.String(), li.EngineerID, li.ExpertID, li.Index},
					"customer %d order %d (%s) built by engineer %d, expert %d, at index %d\n",
					li.CustomerID, li.OrderNumber, li.LaptopType, li.EngineerID, li.ExpertID, li.Index)
			})
		},
	}
	cmd.Flags().Int64Var(&customer, "customer", 0, "customer id (0 to 2147483647)")
	cmd.Flags().Int64Var(&number, "number", 0, "order number (0 to 2147483647)")
	cmd.Flags().StringVar(&typ, "type", "regular", "regular or custom")
	cmd.Flags().Uint64Var(&clientID, "client-id", 0, "the client id of the write (0: a new random one); an earlier run's id resends its order")
	must(cmd.MarkFlagRequired("customer"), cmd.MarkFlagRequired("number"))
	return cmd
}

type laptopJSON struct {
	CustomerID  int32  `json:"customer_id"`
	OrderNumber int32  `json:"order_number"`
	LaptopType  string `json:"laptop_type"`
	EngineerID  int32  `json:"engineer_id"`
	ExpertID    int32  `json:"expert_id"`
	Index       uint64 `json:"index"`
}

type recordJSON struct {
	CustomerID     int32  `json:"customer_id"`
	Found          bool   `json:"found"` // the customer has placed an order
	LastOrder      int32  `json:"last_order"`
	OrderCount     uint64 `json:"order_count"`
	LastLaptopType string `json:"last_laptop_type"`
	Index          uint64 `json:"index"`
}

func toRecordJSON(r wire.CustomerRecord) recordJSON {
	lt := ""
	if r.LastLaptopType >= 0 {
		lt = wire.LaptopType(r.LastLaptopType).String()
	}
	return recordJSON{r.CustomerID, r.OrderCount > 0, r.LastOrder, r.OrderCount, lt, r.LastIndex}
}

func consistencyFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "consistency", "linearizable", "linearizable, session or stale")
}

func getCmd(g *globals) *cobra.Command {
	var customer int64
	var cons string
	cmd := &cobra.Command{
		Use:   "get --customer C [--consistency linearizable|session|stale]",
		Short: "read a customer's record",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cid, err := int32Flag("customer", customer)
			if err != nil {
				return err
			}
			level, err := wire.ParseConsistency(cons)
			if err != nil {
				return fmt.Errorf("--consistency: %w", err)
			}
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				r, err := c.Get(ctx, cid, level)
				if err != nil {
					return fmt.Errorf("get: %w", err)
				}
				out := struct {
					recordJSON
					ReadIndex uint64 `json:"read_index"`
				}{toRecordJSON(r.CustomerRecord), r.ReadIndex}
				if !out.Found {
					return g.Print(out, "customer %d has no orders (read at %d)\n", cid, r.ReadIndex)
				}
				return g.Print(out, "customer %d: last order %d, %d orders, last type %q, index %d (read at %d)\n",
					r.CustomerID, r.LastOrder, r.OrderCount, out.LastLaptopType, r.LastIndex, r.ReadIndex)
			})
		},
	}
	cmd.Flags().Int64Var(&customer, "customer", 0, "customer id (0 to 2147483647)")
	consistencyFlag(cmd, &cons)
	must(cmd.MarkFlagRequired("customer"))
	return cmd
}

func scanCmd(g *globals) *cobra.Command {
	var from int64
	var limit uint
	var cons string
	cmd := &cobra.Command{
		Use:   "scan [--from C] [--limit L] [--consistency ...]",
		Short: "list records in customer order",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			start, err := int32Flag("from", from)
			if err != nil {
				return err
			}
			level, err := wire.ParseConsistency(cons)
			if err != nil {
				return fmt.Errorf("--consistency: %w", err)
			}
			if limit < 1 || limit > wire.MaxScanLimit {
				return fmt.Errorf("--limit %d: must be between 1 and %d", limit, wire.MaxScanLimit)
			}
			return g.withClient(func(ctx context.Context, c *client.Client) error {
				rs, err := c.Scan(ctx, start, uint32(limit), level)
				if err != nil {
					return fmt.Errorf("scan: %w", err)
				}
				return g.printScan(rs)
			})
		},
	}
	cmd.Flags().Int64Var(&from, "from", 0, "first customer id")
	cmd.Flags().UintVar(&limit, "limit", 100, fmt.Sprintf("records per page (1 to %d)", wire.MaxScanLimit))
	consistencyFlag(cmd, &cons)
	return cmd
}

func (g *globals) printScan(rs wire.Records) error {
	out := struct {
		Records   []recordJSON `json:"records"`
		Next      int32        `json:"next"`
		ReadIndex uint64       `json:"read_index"`
	}{Records: []recordJSON{}, Next: rs.Next, ReadIndex: rs.ReadIndex}
	for _, r := range rs.Records {
		out.Records = append(out.Records, toRecordJSON(r))
	}
	if g.JSON {
		return g.Print(out, "")
	}
	if len(out.Records) == 0 {
		fmt.Fprintf(g.Out, "no records (read at %d)\n", rs.ReadIndex)
	}
	for _, r := range out.Records {
		fmt.Fprintf(g.Out, "%10d  last %10d  count %6d  %-8s index %d\n", r.CustomerID, r.LastOrder, r.OrderCount, r.LastLaptopType, r.Index)
	}
	if rs.Next >= 0 {
		fmt.Fprintf(g.Out, "more: scan --from %d\n", rs.Next)
	}
	return nil
}

// must panics on a programming error while building the commands (a
// flag name that does not exist), never on user input.
func must(errs ...error) {
	for _, err := range errs {
		if err != nil {
			panic(err)
		}
	}
}
