// Package raftnode runs one orderly node: hashicorp/raft wired to the fsm
// with a BoltDB log, and the TCP server that answers orderly clients.
//
// A request's way: wire.Server accepts a connection and decodes frames;
// handlers.go validates each request and either proposes a command
// (raft.Apply, writes), or takes the read path of its consistency level
// (readindex.go for linearizable reads). Answers go back on the same
// connection, matched by request id.
//
// raftnode owns every goroutine it starts; Node.Close stops them all.
package raftnode
