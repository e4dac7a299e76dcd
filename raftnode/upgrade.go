package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/raft"

	"orderly/fsm"
	"orderly/group"
)

// upgradeFile is left in the data dir by a node that met a committed entry
// it cannot apply. The node then refuses to start until its binary
// understands the version the entry needs, instead of replaying the log
// into the same failure at every restart.
const upgradeFile = "upgrade-required.json"

// upgradeMarker is upgradeFile's content.
type upgradeMarker struct {
	Index   uint64 `json:"index"`
	Needs   uint16 `json:"needs_version"`
	Message string `json:"message"`
}

// checkUpgradeMarker refuses to start a build too old for the log it has
// met, and clears the marker once the build is new enough.
func checkUpgradeMarker(dir string) error {
	path := filepath.Join(dir, upgradeFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var m upgradeMarker
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if m.Needs == 0 || m.Needs > fsm.Version {
		return fmt.Errorf("%w: this node stopped at %s; remove %s only after upgrading orderd", fsm.ErrNeedsUpgrade, m.Message, path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("clear %s: %w", path, err)
	}
	return nil
}

// stopForUpgrade is the FSM's Fatal: it records why in the data dir, then
// hands the error to cfg.Fatal (orderd exits), which must not return.
func (n *Node) stopForUpgrade(err error) {
	var ue *fsm.NeedsUpgradeError
	m := upgradeMarker{Message: err.Error()}
	if errors.As(err, &ue) {
		m.Index, m.Needs = ue.Index, ue.Needs
	}
	if b, jerr := json.Marshal(m); jerr == nil {
		if werr := os.WriteFile(filepath.Join(n.cfg.DataDir, upgradeFile), b, 0o640); werr != nil {
			n.log.Error("cannot record the needed upgrade", "error", werr)
		}
	}
	n.cfg.Fatal(err)
}

// understoodByAll says whether every member of the configuration has
// published a command version of at least v. Version-1 commands need no
// look: every member understands them.
func (n *Node) understoodByAll(v uint16) error {
	if v <= 1 {
		return nil
	}
	f := n.raft.GetConfiguration()
	if err := n.group.Await(f); err != nil {
		return err
	}
	var behind []string
	for _, s := range f.Configuration().Servers {
		if have := n.fsm.MemberVersion(string(s.ID)); have < v {
			behind = append(behind, fmt.Sprintf("%s understands %d", s.ID, have))
		}
	}
	if len(behind) > 0 {
		return refuse(ErrUnavailable, "command needs version %d, not every member understands it yet: %s",
			v, strings.Join(behind, ", "))
	}
	return nil
}

// applyVersioned proposes a command of version v once every member
// understands it; newer than version 1, the entry carries its version.
// Every command but orders goes through it (orders are version 1, and the
// proposer's hot path skips the look).
func (n *Node) applyVersioned(cmd []byte, v uint16) error {
	return n.applyVersionedTo(n.group, cmd, v)
}

// applyVersionedTo is applyVersioned in the group of any shard: the
// members' versions are shard 0's to know (every node holds every shard).
func (n *Node) applyVersionedTo(g *group.Group, cmd []byte, v uint16) error {
	if v <= 1 {
		return g.Await(g.Raft().Apply(cmd, n.cfg.RequestTimeout))
	}
	if err := n.understoodByAll(v); err != nil {
		return err
	}
	return g.Await(g.Raft().ApplyLog(raft.Log{Data: cmd, Extensions: fsm.AppendEntryVersion(nil, v)}, n.cfg.RequestTimeout))
}
