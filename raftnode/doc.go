// Package raftnode runs one orderly node: a process that hosts a Raft
// group (package group) on the node's network (package peernet) and
// answers orderly clients.
//
// What is here is the node's life and its edges:
//   - life: node.go opens the data dir's stores (datadir.go, logstore.go,
//     files.go) and starts the group on them; on an empty data dir with
//     --peers, bootstrap.go asks the other peers before bootstrapping, so
//     lost nodes do not found a second cluster; votegate.go keeps a node
//     that lost its log from voting until a leader has caught it up;
//     recover.go is the offline --recover for a lost quorum, restore.go
//     --restore from a backup, upgrade.go the command-version gate,
//     alarm.go the disk alarm, backup.go snapshots handed to operators;
//   - edges: handlers.go answers each client request (orders go to the
//     group's proposer, reads take the group's read path), errors.go
//     maps the group's errors to the protocol's codes, admin.go changes
//     membership, watch.go serves the change feed, api.go the HTTP API's
//     calls; peers.go serves and makes the calls nodes make to each other
//     (on peernet's peer streams), vouch.go answers the Raft port's
//     question about a sender this node does not know.
//
// raftnode owns every goroutine it starts; Node.Close stops them all.
package raftnode
