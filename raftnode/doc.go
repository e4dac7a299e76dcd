// Package raftnode runs one orderly node: hashicorp/raft wired to the fsm
// with a BoltDB log, and the TCP server that answers orderly clients.
//
// A request's way: serve.Server accepts a connection and decodes frames;
// handlers.go validates each request and either proposes a command
// (proposer.go packs waiting orders into one raft.Apply, writes), or takes
// the read path of its consistency level (readindex.go for linearizable
// reads). Answers go back on the same connection, matched by request id.
//
// A node's life: node.go opens the stores and Raft; on an empty data dir
// with --peers, bootstrap.go asks the other peers before bootstrapping, so
// lost nodes do not found a second cluster, and votegate.go keeps a node
// that lost its log from voting until a leader has caught it up;
// recover.go is the offline `--recover` for a lost quorum; admin.go
// changes membership.
//
// raftnode owns every goroutine it starts; Node.Close stops them all.
package raftnode
