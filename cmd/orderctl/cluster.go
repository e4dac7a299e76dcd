package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"orderly/client"
	"orderly/wire"
)

type memberJSON struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	ClientAddr string `json:"client_addr"`
	Voter      bool   `json:"voter"`
}

type statusJSON struct {
	ID           string            `json:"id"`
	Addr         string            `json:"addr,omitempty"`
	Role         string            `json:"role"`
	LeaderID     string            `json:"leader_id"`
	LeaderAddr   string            `json:"leader_addr"`
	Term         uint64            `json:"term"`
	CommitIndex  uint64            `json:"commit_index"`
	AppliedIndex uint64            `json:"applied_index"`
	LastIndex    uint64            `json:"last_index"`
	Members      []memberJSON      `json:"members"`
	Stats        map[string]uint64 `json:"stats,omitempty"`
	Error        string            `json:"error,omitempty"`
}

func toMembersJSON(ms []wire.Member) []memberJSON {
	out := []memberJSON{}
	for _, m := range ms {
		out = append(out, memberJSON{m.ID, m.RaftAddr, m.ClientAddr, m.Voter})
	}
	return out
}

func toStatusJSON(s wire.StatusInfo) statusJSON {
	out := statusJSON{ID: s.ID, Role: s.Role, LeaderID: s.LeaderID, LeaderAddr: s.LeaderAddr, Term: s.Term,
		CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, LastIndex: s.LastIndex, Members: toMembersJSON(s.Members)}
	if len(s.Stats) > 0 {
		out.Stats = map[string]uint64{}
		for _, st := range s.Stats {
			out.Stats[st.Name] = st.Value
		}
	}
	return out
}

func (g *globals) printStatus(s statusJSON) {
	if s.Error != "" {
		fmt.Fprintf(g.out, "%s: %s\n", s.Addr, s.Error)
		return
	}
	name := s.ID
	if s.Addr != "" {
		name += " (" + s.Addr + ")"
	}
	fmt.Fprintf(g.out, "%s: %s, term %d, leader %s at %s, commit %d, applied %d, last %d\n",
		name, s.Role, s.Term, s.LeaderID, s.LeaderAddr, s.CommitIndex, s.AppliedIndex, s.LastIndex)
	for _, m := range s.Members {
		if s.Role == "balancer" {
			state := "down"
			if s.Stats[backendUp+m.ClientAddr] == 1 {
				state = "up"
			}
			fmt.Fprintf(g.out, "  backend %-8s %-21s %s\n", m.ID, m.ClientAddr, state)
			continue
		}
		fmt.Fprintf(g.out, "  member %-8s raft %-21s client %-21s voter %v\n", m.ID, m.RaftAddr, m.ClientAddr, m.Voter)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Stats)) {
		if !strings.HasPrefix(k, backendUp) {
			fmt.Fprintf(g.out, "  %s: %d\n", k, s.Stats[k])
		}
	}
}

// backendUp prefixes the balancer's per-backend health stat.
const backendUp = "backend_up "

func runStatus(ctx context.Context, g *globals, c *client.Client, args []string) error {
	fs := subFlags("status")
	all := fs.Bool("all", false, "ask every address, not only the first that answers")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if !*all {
		s, err := c.Status(ctx)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		out := toStatusJSON(s)
		if g.json {
			return g.print(out, "")
		}
		g.printStatus(out)
		return nil
	}
	var list []statusJSON
	for _, a := range g.addrs {
		s, err := c.StatusOf(ctx, a)
		out := toStatusJSON(s)
		out.Addr = a
		if err != nil {
			out.Error = err.Error()
		}
		list = append(list, out)
	}
	if g.json {
		return g.print(list, "")
	}
	for _, s := range list {
		g.printStatus(s)
	}
	return nil
}

func runMembers(ctx context.Context, g *globals, c *client.Client, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("members: want list, add or remove")
	}
	fs := subFlags("members " + args[0])
	id := fs.String("id", "", "member id")
	raftAddr := fs.String("raft-addr", "", "member's Raft address (add)")
	nonvoter := fs.Bool("nonvoter", false, "add as a non-voting member")
	if err := parseSub(fs, args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "list":
		ms, err := c.Members(ctx)
		if err != nil {
			return fmt.Errorf("members list: %w", err)
		}
		out := toMembersJSON(ms)
		if g.json {
			return g.print(out, "")
		}
		for _, m := range out {
			fmt.Fprintf(g.out, "%-8s raft %-21s client %-21s voter %v\n", m.ID, m.RaftAddr, m.ClientAddr, m.Voter)
		}
		return nil
	case "add":
		if *id == "" || *raftAddr == "" {
			return fmt.Errorf("members add: --id and --raft-addr are required")
		}
		if err := c.Admin(ctx, wire.AddMember{ID: *id, RaftAddr: *raftAddr, Voter: !*nonvoter}); err != nil {
			return fmt.Errorf("members add: %w", err)
		}
	case "remove":
		if *id == "" {
			return fmt.Errorf("members remove: --id is required")
		}
		if err := c.Admin(ctx, wire.RemoveMember{ID: *id}); err != nil {
			return fmt.Errorf("members remove: %w", err)
		}
	default:
		return fmt.Errorf("members %q: want list, add or remove", args[0])
	}
	return g.print(map[string]string{"result": "ok"}, "ok\n")
}

func runTransfer(ctx context.Context, g *globals, c *client.Client, args []string) error {
	fs := subFlags("transfer-leader")
	to := fs.String("to", "", "id of the new leader (default: any up-to-date voter)")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if err := c.Admin(ctx, wire.TransferLeader{ID: *to}); err != nil {
		return fmt.Errorf("transfer-leader: %w", err)
	}
	return g.print(map[string]string{"result": "ok"}, "ok\n")
}
