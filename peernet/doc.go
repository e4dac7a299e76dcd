// Package peernet is a node's network to the other nodes: the Raft port,
// its mutual TLS and the byte that tells its two kinds of stream apart
// (port.go); hashicorp/raft's transport over it, whose inboxes check
// every Raft request a sender's certificate sends against the node's
// rules (transport.go, rules.go); and the peer streams on which nodes
// call each other in the orderly protocol (pool.go dials them; the node
// serves them).
//
// Nodes call each other in one way only: the bootstrap probe and the
// vote gate's question (Status), vouching for a sender (Members), a
// follower's ReadIndex, Publish, ReportAlarms, the HTTP API's orders
// forwarded to the leader (AsRole), the operator's status of every
// member all go on a peer stream, where only node certificates are let
// in.
//
// peernet knows nothing of what a node is: the rules' questions
// (configuration, leader, vote gate, vouching) are the node's answers.
// Everything it starts, Close stops.
package peernet
