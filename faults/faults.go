// Package faults holds the switches that break orderly on purpose, so that
// the chaos checker can be shown to catch each kind of bug, and the hooks
// that tests use to stall a node at a chosen point.
//
// Product code has fault points: calls such as `if faults.LoseOrder(idx)`
// at the one place a fault acts. In a default build every point is a
// constant (false, 0, nothing) that the compiler inlines and removes with
// its branch (off.go); only a binary built with `-tags faults` (the e2e
// and chaos binaries, `make test`) has the switches, set by
// $ORDERLY_TEST_FAULT when the process starts, and when and how often a
// fault strikes is decided here (on.go), not at the point. A production
// node cannot be broken by an environment variable, and no product
// package has a field, parameter or version for tests. (dragonboat keeps
// its build-tag switches in one package the same way; etcd's gofail
// comments would need the sources rewritten for every test build.)
package faults

import (
	"fmt"
	"slices"
)

// EnvVar names the environment variable a faults build reads its fault
// from.
const EnvVar = "ORDERLY_TEST_FAULT"

// The faults, each a bug the chaos checker must catch.
const (
	// StaleReads: followers answer linearizable reads from local state,
	// without ReadIndex.
	StaleReads = "stale-linearizable-reads"
	// ForgetSessions: the FSM forgets the exactly-once session table, so a
	// retried write is applied again.
	ForgetSessions = "forget-sessions"
	// LoseOrders: every fifth order is acknowledged but not recorded.
	LoseOrders = "lose-orders"
	// SessionIgnoresIndex: session reads do not wait for the client's last
	// seen index.
	SessionIgnoresIndex = "session-ignores-index"
	// RefuseWrites: every order is answered Unavailable; nothing is lost
	// because nothing is acknowledged, which only a progress check sees.
	RefuseWrites = "refuse-writes"
	// BalancerSkipsFeedWait: the balancer answers linearizable reads from
	// its cache without waiting for its change feed to reach the read
	// index (orderlb honours it; nodes ignore it).
	BalancerSkipsFeedWait = "balancer-skips-feed-wait"
)

// All lists every fault, for flag help and validation.
var All = []string{StaleReads, ForgetSessions, LoseOrders, SessionIgnoresIndex, RefuseWrites, BalancerSkipsFeedWait}

// Validate says whether name may be set in this build: "" always may; a
// fault only in a faults build, and only one of All.
func Validate(name string) error {
	if name == "" {
		return nil
	}
	if !Compiled {
		return fmt.Errorf("test fault %q: this binary was built without -tags faults and has no fault switches", name)
	}
	if !slices.Contains(All, name) {
		return fmt.Errorf("test fault %q: want one of %v", name, All)
	}
	return nil
}
