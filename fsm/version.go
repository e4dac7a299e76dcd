package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command versions make rolling upgrades safe (etcd's cluster version does
// the same). Each command type needs a version; every member publishes the
// Version its build understands (SetMember); the leader proposes a command
// only when every member understands it (raftnode), and marks the entry
// with the version it needs (raft.Log.Extensions), so that a node that
// meets an entry it cannot decode can say which version it must be
// upgraded to. Version 1 is every command up to and including this
// scheme; version 2 adds SetLimits (the session cap, and SessionExpired
// for a write without a session); version 3 SetShard (the shard map of a
// sharded cluster). Every build of a release, test builds
// included, understands the same Version: the upgrade tests run a real
// older release (e2e/upgrade_test.go).

// Version is the highest command version this build understands.
const Version uint16 = 3

// ErrNeedsUpgrade is the FSM's fatal error for an entry this build cannot
// apply: see NeedsUpgradeError.
var ErrNeedsUpgrade = errors.New("log entry needs a newer orderd")

// NeedsUpgradeError names the entry and the version it needs.
type NeedsUpgradeError struct {
	Index, Term uint64
	Needs       uint16 // 0: the entry does not say
	Have        uint16 // this build's Version
	Cause       error
}

func (e *NeedsUpgradeError) Error() string {
	need := "a newer command version"
	if e.Needs > 0 {
		need = fmt.Sprintf("command version %d", e.Needs)
	}
	return fmt.Sprintf("log entry %d (term %d) needs %s; this build understands version %d: upgrade orderd on this node (%v)",
		e.Index, e.Term, need, e.Have, e.Cause)
}

func (e *NeedsUpgradeError) Unwrap() []error { return []error{ErrNeedsUpgrade, e.Cause} }

// VersionOf is the command version an encoded command needs (0: unknown
// to this build).
func VersionOf(cmd []byte) uint16 {
	if len(cmd) == 0 {
		return 0
	}
	switch CommandType(cmd[0]) {
	case CmdPlaceOrder, CmdSetMember, CmdPlaceOrders:
		return 1
	case CmdSetLimits:
		return 2
	case CmdSetShard:
		return 3
	}
	return 0
}

// AppendEntryVersion is the raft.Log.Extensions that marks an entry with
// the version it needs.
func AppendEntryVersion(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

// entryVersion reads AppendEntryVersion's mark (0 if absent).
func entryVersion(ext []byte) uint16 {
	if len(ext) != 2 {
		return 0
	}
	return binary.BigEndian.Uint16(ext)
}
