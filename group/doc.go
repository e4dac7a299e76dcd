// Package group runs one Raft group: hashicorp/raft wired to an fsm.FSM,
// the proposer that packs orders into entries, and the read path (a new
// leader's term entry, ReadIndex, the applied wait).
//
// A group is given its stores and its raft.Transport; it opens no file
// and no port. raftnode gives it a data dir's stores and the node's Raft
// port; tests give it hashicorp/raft's in-memory stores and InmemTransport.
// Its errors are its own (errors.go): the server that answers a client
// maps them to protocol codes.
//
// A Group owns every goroutine it starts; Close stops them all.
package group
