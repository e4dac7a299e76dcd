// Package fsm is orderly's replicated state machine: the commands that go
// through the Raft log, the customer records and client sessions they
// update, and the snapshot format that carries both.
//
// fsm decides; it never talks to the network, reads a clock, draws a random
// number or depends on map iteration order. Every replica that applies the
// same log must reach the same state, so everything Apply uses comes from
// the command and the log entry: time comes from the leader_time the
// leader put into each command.
//
// Concurrency: raft calls Apply, ApplyBatch, Snapshot and Restore from one
// goroutine. Reads (Get, Scan, Members, AppliedIndex, Applied) may come
// from any goroutine at any time; a read lock keeps them consistent.
package fsm
