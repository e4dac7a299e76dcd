// Package sharedlog is one log store for many Raft groups: a BoltDB file
// whose buckets hold each group's log and stable state, written by one
// committer that puts every append waiting at that moment, of whatever
// group, into one transaction: one fsync for all of them (group commit,
// as dragonboat's and TiKV's shared logs batch their groups' writes).
//
// It is the experiment behind a choice, not a part of orderd: with a log
// per group, groups on one disk each pay an fsync per entry, and a shared
// log batches them; measured (bench/groups --store shared,
// docs/performance.md "What a Raft group costs"), it placed fewer orders
// than raft-wal with a log per group at every group count on this
// machine, where a group's cost per entry (its own replication streams,
// goroutines and system calls) bounds writes before the disk does, and a
// BoltDB commit costs more than a raft-wal append. Nothing waits to fill
// a batch: an append that finds the committer idle goes alone.
//
// Store implements raft.LogStore and raft.StableStore for one group.
// DB owns the committer's goroutine; Close stops it.
package sharedlog
