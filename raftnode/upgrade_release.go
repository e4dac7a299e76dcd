//go:build !faults

package raftnode

import "orderly/wire"

// startTestProposer does nothing in a release build.
func (n *Node) startTestProposer() {}

// testStats is empty in a release build.
func (n *Node) testStats() []wire.Stat { return nil }
