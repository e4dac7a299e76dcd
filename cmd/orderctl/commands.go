package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

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

func runOrder(ctx context.Context, g *globals, c *client.Client, args []string) error {
	fs := subFlags("order")
	customer := fs.Int64("customer", -1, "customer id (>= 0)")
	number := fs.Int64("number", -1, "order number (>= 0)")
	typ := fs.String("type", "regular", "regular or custom")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	cid, err := int32Flag("customer", *customer)
	if err != nil {
		return err
	}
	num, err := int32Flag("number", *number)
	if err != nil {
		return err
	}
	lt, err := parseLaptopType(*typ)
	if err != nil {
		return err
	}
	li, err := c.Order(ctx, cid, num, lt)
	if err != nil {
		return fmt.Errorf("order: %w", err)
	}
	return g.print(laptopJSON{li.CustomerID, li.OrderNumber, li.LaptopType.String(), li.EngineerID, li.ExpertID, li.Index},
		"customer %d order %d (%s) built by engineer %d, expert %d, at index %d\n",
		li.CustomerID, li.OrderNumber, li.LaptopType, li.EngineerID, li.ExpertID, li.Index)
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
	return recordJSON{r.CustomerID, r.LastOrder, r.OrderCount, lt, r.LastIndex}
}

func consistencyFlag(fs interface {
	String(string, string, string) *string
}) *string {
	return fs.String("consistency", "linearizable", "linearizable, session or stale")
}

func runGet(ctx context.Context, g *globals, c *client.Client, args []string) error {
	fs := subFlags("get")
	customer := fs.Int64("customer", -1, "customer id (>= 0)")
	cons := consistencyFlag(fs)
	if err := parseSub(fs, args); err != nil {
		return err
	}
	cid, err := int32Flag("customer", *customer)
	if err != nil {
		return err
	}
	level, err := wire.ParseConsistency(*cons)
	if err != nil {
		return err
	}
	r, err := c.Get(ctx, cid, level)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	out := struct {
		recordJSON
		ReadIndex uint64 `json:"read_index"`
	}{toRecordJSON(r.CustomerRecord), r.ReadIndex}
	return g.print(out, "customer %d: last order %d, %d orders, last type %q, index %d (read at %d)\n",
		r.CustomerID, r.LastOrder, r.OrderCount, out.LastLaptopType, r.LastIndex, r.ReadIndex)
}

func runScan(ctx context.Context, g *globals, c *client.Client, args []string) error {
	fs := subFlags("scan")
	from := fs.Int64("from", 0, "first customer id")
	limit := fs.Uint("limit", 100, "records per page (1..10000)")
	cons := consistencyFlag(fs)
	if err := parseSub(fs, args); err != nil {
		return err
	}
	start, err := int32Flag("from", *from)
	if err != nil {
		return err
	}
	level, err := wire.ParseConsistency(*cons)
	if err != nil {
		return err
	}
	if *limit > wire.MaxScanLimit {
		return fmt.Errorf("--limit %d: at most %d", *limit, wire.MaxScanLimit)
	}
	rs, err := c.Scan(ctx, start, uint32(*limit), level)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	out := struct {
		Records   []recordJSON `json:"records"`
		Next      int32        `json:"next"`
		ReadIndex uint64       `json:"read_index"`
	}{Records: []recordJSON{}, Next: rs.Next, ReadIndex: rs.ReadIndex}
	for _, r := range rs.Records {
		out.Records = append(out.Records, toRecordJSON(r))
	}
	if g.json {
		return g.print(out, "")
	}
	for _, r := range out.Records {
		fmt.Fprintf(g.out, "%10d  last %10d  count %6d  %-8s index %d\n", r.CustomerID, r.LastOrder, r.OrderCount, r.LastLaptopType, r.Index)
	}
	if rs.Next >= 0 {
		fmt.Fprintf(g.out, "more: scan --from %d\n", rs.Next)
	}
	return nil
}

// print writes v as JSON with --json, else the formatted text.
func (g *globals) print(v any, format string, args ...any) error {
	if g.json {
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintf(g.out, format, args...)
	return err
}
