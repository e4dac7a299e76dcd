package group

import "errors"

// The group's errors. Each says whether a write may have happened: only
// ErrUnknownOutcome leaves an order's fate open; the others are sure
// refusals, and nothing was applied.
var (
	// ErrNotLeader: this replica does not lead the group (Leader names
	// who does, if anyone).
	ErrNotLeader = errors.New("not the leader")
	// ErrNotProposed: the order was not handed to Raft (a leadership
	// transfer, a full queue, the group closing).
	ErrNotProposed = errors.New("not proposed")
	// ErrBusy: the order waited for its turn longer than its deadline.
	ErrBusy = errors.New("not proposed in time")
	// ErrUnknownOutcome: the order was handed to Raft and its fate is not
	// known (a lost leadership, a deadline); retry it with the same
	// (client_id, seq).
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrUnavailable: a read cannot be served here now (no Raft state yet,
	// a new leader not ready, a replica behind, leadership unconfirmed).
	ErrUnavailable = errors.New("unavailable")
)
