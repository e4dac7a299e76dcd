// Package sharedlog is one log store for many Raft groups: a BoltDB file
// whose buckets hold each group's log and stable state, written by one
// committer that puts every append waiting at that moment, of whatever
// group, into one transaction: one fsync for all of them (group commit,
// as dragonboat's and TiKV's shared logs batch their groups' writes).
//
// With a log per group, groups on one disk each pay an fsync per entry
// and the disk's fsyncs are shared among them (docs/performance.md, "What
// a Raft group costs"); here an idle group costs nothing on disk and busy
// groups share fsyncs. Nothing waits to fill a batch: an append that
// finds the committer idle goes alone.
//
// Store implements raft.LogStore and raft.StableStore for one group.
// DB owns the committer's goroutine; Close stops it.
package sharedlog
