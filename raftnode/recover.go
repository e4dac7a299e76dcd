package raftnode

import (
	"errors"
	"fmt"
	"slices"

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
//
// In a sharded cluster the meta group takes members, and each shard this
// node holds a replica of takes the members that its last configuration
// (as this node's replica has it) named, and this node: a shard keeps
// its placement among the survivors. A shard none of the survivors holds
// is lost with the disks that held it.
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
	count, err := shardCountOf(dataDir)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	// The shards first: until the meta group is recovered too, running
	// --recover again does all of it again.
	for id := range count {
		dir := shardDir(dataDir, id)
		if count == 1 || storeOf(dir) == "" {
			continue
		}
		last, err := groupConfiguration(dir, nodeID, log.With("shard", id))
		if err != nil {
			return fmt.Errorf("recover shard %d: %w", id, err)
		}
		var keep []raft.Server
		for _, p := range members {
			named := slices.ContainsFunc(last.Servers, func(s raft.Server) bool { return string(s.ID) == p.ID })
			if named || p.ID == nodeID {
				keep = append(keep, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
			}
		}
		if err := recoverGroup(dir, nodeID, keep, log.With("shard", id)); err != nil {
			return fmt.Errorf("recover shard %d: %w", id, err)
		}
		log.Warn("forced a new membership onto a shard", "shard", id, "replicas", len(keep))
	}
	if err := recoverGroup(dataDir, nodeID, votersOf(members), log); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	log.Warn("forced a new cluster membership; start the node normally now", "members", clusterID(members))
	return nil
}

// recoverGroup forces servers as the configuration of the group whose
// stores are in dir.
func recoverGroup(dir, nodeID string, servers []raft.Server, log hclog.Logger) error {
	g, err := openStopped(dir, nodeID, log)
	if err != nil {
		return err
	}
	defer g.db.Close()
	// RecoverCluster replays the log into the FSM it is given to take a
	// snapshot with the new configuration; that FSM is thrown away.
	return raft.RecoverCluster(g.rc, g.scratch, g.db, g.db, g.snaps, g.trans, raft.Configuration{Servers: servers})
}

// groupConfiguration is the latest configuration of the group whose
// stores are in dir, as its log and snapshots say.
func groupConfiguration(dir, nodeID string, log hclog.Logger) (raft.Configuration, error) {
	g, err := openStopped(dir, nodeID, log)
	if err != nil {
		return raft.Configuration{}, err
	}
	defer g.db.Close()
	return raft.GetConfiguration(g.rc, g.scratch, g.db, g.db, g.snaps, g.trans)
}

// stoppedGroup is a stopped group's stores, opened by the offline tools.
type stoppedGroup struct {
	db      logStore
	snaps   *raft.FileSnapshotStore
	rc      *raft.Config
	trans   raft.Transport
	scratch *fsm.FSM // replays the log, then is thrown away
}

func openStopped(dir, nodeID string, log hclog.Logger) (*stoppedGroup, error) {
	// A running node holds the file lock: fail instead of waiting forever.
	db, _, err := openLogStore(dir, "", log.Named("wal"))
	if err != nil {
		return nil, fmt.Errorf("is the node still running? stop it first: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, log.Named("snapshots"))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = log.Named("raft")
	// Only used to encode peer addresses, which it does as the TCP
	// transport does (the address itself); nothing is dialled or bound.
	_, trans := raft.NewInmemTransport("")
	return &stoppedGroup{db: db, snaps: snaps, rc: rc, trans: trans, scratch: fsm.New(fsm.Options{Logger: log.Named("fsm")})}, nil
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
