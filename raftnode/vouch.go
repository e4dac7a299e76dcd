package raftnode

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A node whose log is behind passes through old configurations as it
// catches up: a wiped node replaying the leader's log meets the entry
// that once removed a node that was added again later, maybe the leader
// itself, and would refuse the very leader that is catching it up. So a
// sender missing from this node's latest configuration is asked about of
// the other voters: if a majority of them list it (at the address its
// request gives), it is a member; a stranger, or a member removed for
// good, is listed by none of them. Answers are kept for vouchFor, so a
// stranger's requests cost at most one round of questions per vouchFor.
const vouchFor = time.Second

// vouches holds the last answers, by sender.
type vouches struct {
	mu   sync.Mutex
	last map[string]vouch
}

type vouch struct {
	addr raft.ServerAddress // "" : not vouched for
	at   time.Time
}

// vouched asks the voters of cfg other than this node whether sender is
// a member of their latest configuration, and at which address.
func (n *Node) vouched(sender string, cfg raft.Configuration) (raft.ServerAddress, bool) {
	n.vouches.mu.Lock()
	if v, ok := n.vouches.last[sender]; ok && time.Since(v.at) < vouchFor {
		n.vouches.mu.Unlock()
		return v.addr, v.addr != ""
	}
	n.vouches.mu.Unlock()

	var others []raft.Server
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.ID && string(s.ID) != sender {
			others = append(others, s)
		}
	}
	ctx, cancel := context.WithTimeout(n.ctx, time.Second)
	defer cancel()
	answers := make(chan raft.ServerAddress, len(others))
	for _, s := range others {
		go func() {
			b, err := askPeer(ctx, n.cfg.TLS, string(s.Address), peerMembers)
			if err != nil {
				answers <- ""
				return
			}
			answers <- addressIn(string(b), sender)
		}()
	}
	votes := map[raft.ServerAddress]int{}
	var addr raft.ServerAddress
	for range others {
		if a := <-answers; a != "" {
			if votes[a]++; votes[a]*2 > len(others) {
				addr = a
			}
		}
	}
	n.vouches.mu.Lock()
	if n.vouches.last == nil {
		n.vouches.last = map[string]vouch{}
	}
	n.vouches.last[sender] = vouch{addr: addr, at: time.Now()}
	n.vouches.mu.Unlock()
	if addr != "" {
		n.log.Info("a node missing from this node's configuration is a member of a majority's", "node", sender, "address", addr)
	}
	return addr, addr != ""
}

// addressIn is id's address in a peerMembers answer, "" if it is not there.
func addressIn(answer, id string) raft.ServerAddress {
	for _, line := range strings.Split(answer, "\n") {
		if got, addr, ok := strings.Cut(line, " "); ok && got == id {
			return raft.ServerAddress(addr)
		}
	}
	return ""
}
