package peernet

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// ErrNotMember: the sender's certificate names no member of the
// configuration this node knows.
var ErrNotMember = errors.New("not a member of the cluster")

// ErrVotesHeld: the vote gate holds this node's votes (raftnode's votegate.go).
var ErrVotesHeld = errors.New("votes held: this node's log was lost")

// Rules decides on the Raft requests a node receives, on the requests
// as hashicorp/raft decoded them. hashicorp/raft checks none of this
// itself: its AppendEntries, InstallSnapshot and TimeoutNow handlers take
// any sender at its word.
type Rules struct {
	// Config is the latest configuration this node knows (appended, maybe
	// not committed; hashicorp/raft's GetConfiguration) and whether Raft
	// runs yet. It blocks until Raft runs.
	Config func() (raft.Configuration, error)
	// Leader is the leader this node follows (id and address) and the
	// current term ("" when it follows none).
	Leader func() (id, addr string, term uint64)
	// RefuseVotes reports whether votes are held (raftnode's vote gate).
	RefuseVotes func() bool
	// Vouched, if set, asks the nodes this node knows about a sender
	// missing from Config (raftnode's vouch.go): a node whose log is behind, or that
	// knows no configuration yet, may not know a member.
	Vouched func(sender string, cfg raft.Configuration) (raft.ServerAddress, bool)
	// Seeds are the node's --peers: while it knows no configuration, a
	// sender among them (at its address there) is a member, and the
	// others are asked about anyone else (vouched). A node without them
	// and without a configuration takes any node certificate until a
	// leader gives it one (join mode: docs/security.md says why).
	Seeds map[string]raft.ServerAddress
}

// memberAt is the id of the member at addr in the latest configuration,
// or of a seed there; "" if none is known (the dialer then checks the
// node role alone).
func (r Rules) memberAt(addr raft.ServerAddress) string {
	if r.Config != nil {
		if cfg, err := r.Config(); err == nil {
			for _, s := range cfg.Servers {
				if s.Address == addr {
					return string(s.ID)
				}
			}
		}
	}
	for id, a := range r.Seeds {
		if a == addr {
			return id
		}
	}
	return ""
}

// admits says whether sender (a node certificate's name) may open a Raft
// stream: a member, as member says. "" is a plaintext port (--insecure):
// no identity to check.
func (r Rules) admits(sender string) error {
	if sender == "" {
		return nil
	}
	_, err := r.member(sender)
	return err
}

// member is sender's entry in the latest configuration; a sender missing
// from it is a member if the nodes this node knows vouch for it. A node
// that knows no configuration and has no --peers takes any node: nil
// entry, no error.
func (r Rules) member(sender string) (*raft.Server, error) {
	cfg, err := r.Config()
	if err != nil {
		return nil, err
	}
	for i := range cfg.Servers {
		if string(cfg.Servers[i].ID) == sender {
			return &cfg.Servers[i], nil
		}
	}
	if len(cfg.Servers) == 0 {
		if len(r.Seeds) == 0 {
			return nil, nil
		}
		if addr, ok := r.Seeds[sender]; ok {
			return &raft.Server{ID: raft.ServerID(sender), Address: addr}, nil
		}
	}
	if r.Vouched != nil {
		if addr, ok := r.Vouched(sender, cfg); ok {
			return &raft.Server{ID: raft.ServerID(sender), Address: addr}, nil
		}
	}
	return nil, fmt.Errorf("node %q: %w", sender, ErrNotMember)
}

// check refuses a request that Raft must not act on: a vote while votes
// are held; TimeoutNow from a node that does not lead; from a certificate
// that names no member (the leader this node follows in the request's
// term is one, whatever an old configuration replayed on the way says); a
// header that does not name the certificate's node, or gives an address
// other than the member's (Raft takes the leader's address from it); a
// deprecated sender field that disagrees with the header (Raft falls
// back to it).
func (r Rules) check(sender string, cmd any) error {
	hdr, legacy, term, vote, err := senderOf(cmd)
	if err != nil {
		return err
	}
	if vote && r.RefuseVotes != nil && r.RefuseVotes() {
		return ErrVotesHeld
	}
	if sender == "" {
		return nil
	}
	if string(hdr.ID) != sender {
		return fmt.Errorf("node %q sent a request as %q", sender, hdr.ID)
	}
	if len(legacy) > 0 && !bytes.Equal(legacy, hdr.Addr) {
		return fmt.Errorf("node %q sent a request whose deprecated sender %q is not its header's %q", sender, legacy, hdr.Addr)
	}
	var leaderID, leaderAddr string
	var current uint64
	if r.Leader != nil {
		leaderID, leaderAddr, current = r.Leader()
	}
	if _, ok := cmd.(*raft.TimeoutNowRequest); ok && leaderID != sender {
		return fmt.Errorf("node %q asked for an election, but does not lead (the leader is %q)", sender, leaderID)
	}
	if leaderID == sender && term == current && !vote {
		if string(hdr.Addr) != leaderAddr {
			return fmt.Errorf("node %q sent a request from address %q; as the leader it is at %q", sender, hdr.Addr, leaderAddr)
		}
		return nil
	}
	m, err := r.member(sender)
	if err != nil {
		return err
	}
	if m != nil && string(hdr.Addr) != string(m.Address) {
		return fmt.Errorf("node %q sent a request from address %q; its address as a member is %q", sender, hdr.Addr, m.Address)
	}
	return nil
}

// senderOf is the header of a decoded request, the deprecated sender
// field of its kind, its term (0 for TimeoutNow, which carries none), and
// whether it asks for a vote.
func senderOf(cmd any) (hdr raft.RPCHeader, legacy []byte, term uint64, vote bool, err error) {
	switch c := cmd.(type) {
	case *raft.AppendEntriesRequest:
		//lint:ignore SA1019 Raft still falls back to the deprecated field
		return c.RPCHeader, c.Leader, c.Term, false, nil
	case *raft.RequestVoteRequest:
		//lint:ignore SA1019 as above
		return c.RPCHeader, c.Candidate, c.Term, true, nil
	case *raft.RequestPreVoteRequest:
		return c.RPCHeader, nil, c.Term, true, nil
	case *raft.InstallSnapshotRequest:
		return c.RPCHeader, c.Leader, c.Term, false, nil
	case *raft.TimeoutNowRequest:
		return c.RPCHeader, nil, 0, false, nil
	}
	return raft.RPCHeader{}, nil, 0, false, fmt.Errorf("unknown raft request %T", cmd)
}
