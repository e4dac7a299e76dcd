package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// identityFile records which node of which cluster a data dir belongs to.
const identityFile = "orderly-identity.json"

// ErrForeignDataDir means the data dir belongs to another node or cluster.
var ErrForeignDataDir = errors.New("data dir belongs to another node or cluster")

type identity struct {
	NodeID string `json:"node_id"`
	// Cluster is the sorted initial peer list the cluster was bootstrapped
	// from; empty for a node that joined an existing cluster.
	Cluster string `json:"cluster"`
}

// claimDataDir creates dir if needed and checks, or writes, its identity.
// A node must never run on another node's log: it would vote and ack with
// someone else's history.
func claimDataDir(dir, nodeID string, peers []Peer) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, identityFile)
	want := identity{NodeID: nodeID, Cluster: clusterID(peers)}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if storeOf(dir) != "" {
			return fmt.Errorf("data dir %s has a Raft log but no %s: %w", dir, identityFile, ErrForeignDataDir)
		}
		return writeIdentity(path, want)
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	}
	var have identity
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if have.NodeID != nodeID {
		return fmt.Errorf("data dir %s is node %q's, not %q: %w", dir, have.NodeID, nodeID, ErrForeignDataDir)
	}
	if have.Cluster != "" && want.Cluster != "" && have.Cluster != want.Cluster {
		return fmt.Errorf("data dir %s is of the cluster bootstrapped from %q, but --peers gives %q: %w",
			dir, have.Cluster, want.Cluster, ErrForeignDataDir)
	}
	return nil
}

// writeIdentity writes the file atomically and durably.
func writeIdentity(path string, id identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, append(b, '\n')); err != nil {
		return fmt.Errorf("write identity %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install identity %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("install identity %s: %w", path, err)
	}
	return nil
}

// ErrDataDirInUse means another process (a running orderd) holds the data
// dir's log store.
var ErrDataDirInUse = errors.New("data dir in use by another orderd")

// lockTimeout bounds the wait for the log store's file lock: a second
// orderd on a data dir in use must say so, not hang.
const lockTimeout = 2 * time.Second
