package raftnode

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/fsm"
)

// Recover forces a new membership onto the data dir of a stopped node,
// for a cluster that lost its quorum for good (two of three data dirs
// gone): the survivors are restarted with `orderd --recover` listing the
// members they will have, then started normally, and new nodes join with
// `members add`. It is the equivalent of Consul's peers.json and etcd's
// --force-new-cluster, and as unsafe as they are: it commits every entry
// in this node's log, including ones the lost quorum never acknowledged,
// and if the lost nodes come back they must be wiped first.
//
// Every node in members must be recovered with the same list. This node
// must be one of them.
func Recover(dataDir, nodeID string, members []Peer, log hclog.Logger) error {
	if len(members) == 0 {
		return errors.New("recover: no members given")
	}
	if !isPeer(members, nodeID) {
		return fmt.Errorf("recover: node %q is not among the members %s; it would not be part of the cluster it recovers", nodeID, clusterID(members))
	}
	if err := checkOwnDataDir(dataDir, nodeID); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if count, err := shardCountOf(dataDir); err != nil || count > 1 {
		if err == nil {
			err = fmt.Errorf("data dir %s holds %d shards: recovering a sharded cluster (every shard's group) is not built yet", dataDir, count)
		}
		return fmt.Errorf("recover: %w", err)
	}
	// A running node holds the file lock: fail instead of waiting forever.
	db, _, err := openLogStore(dataDir, "", log.Named("wal"))
	if err != nil {
		return fmt.Errorf("recover (is the node still running? stop it first): %w", err)
	}
	defer db.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, log.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("recover: open snapshot store %s: %w", dataDir, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = log.Named("raft")
	// Only used to encode peer addresses, which it does as the TCP
	// transport does (the address itself); nothing is dialled or bound.
	_, trans := raft.NewInmemTransport("")
	var servers []raft.Server
	for _, p := range members {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
	}
	// RecoverCluster replays the log into the FSM it is given to take a
	// snapshot with the new configuration; that FSM is thrown away.
	scratch := fsm.New(fsm.Options{Logger: log.Named("fsm")})
	if err := raft.RecoverCluster(rc, scratch, db, db, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	log.Warn("forced a new cluster membership; start the node normally now", "members", clusterID(members))
	return nil
}

// checkOwnDataDir checks that dir holds nodeID's data, without creating
// anything: recovering a wrong or empty dir must fail, not start afresh.
func checkOwnDataDir(dir, nodeID string) error {
	if storeOf(dir) == "" {
		return fmt.Errorf("data dir %s has no Raft log to recover", dir)
	}
	return claimDataDir(dir, nodeID, nil)
}

func isPeer(peers []Peer, id string) bool {
	for _, p := range peers {
		if p.ID == id {
			return true
		}
	}
	return false
}
