package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"orderly/backup"
	"orderly/fsm"
)

// restoredFile marks a data dir seeded by Restore, with the backup's
// index and term, so that a node started again with the same --restore
// (a unit file or compose service keeps its flags) starts normally.
const restoredFile = "orderly-restored.json"

type restoredMark struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// raftCurrentTermKey is where hashicorp/raft keeps its current term in the
// stable store.
var raftCurrentTermKey = []byte("CurrentTerm")

// Restore seeds an empty data dir of a new cluster from a backup (orderd
// --restore): the backup's state becomes a Raft snapshot at its index and
// term whose configuration is peers, the new cluster's members. Every
// member is seeded from the same file with the same --peers, and the
// cluster elects a leader in the next term; nothing needs bootstrapping.
// A data dir that already holds Raft state is refused, unless Restore
// seeded it from this same backup, which it says and leaves alone.
func Restore(dataDir, nodeID, store string, peers []Peer, path string, log hclog.Logger) error {
	if dataDir == "" || nodeID == "" {
		return errors.New("restore: needs --id and --data-dir")
	}
	if len(peers) == 0 {
		return errors.New("restore: --peers must list the new cluster's members")
	}
	if !isPeer(peers, nodeID) {
		return fmt.Errorf("restore: node %q is not among --peers %s", nodeID, clusterID(peers))
	}
	b, err := backup.Open(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer b.Close()
	mark := restoredMark{Index: b.Index, Term: b.Term}
	if storeOf(dataDir) != "" {
		var have restoredMark
		if raw, rerr := os.ReadFile(filepath.Join(dataDir, restoredFile)); rerr == nil && json.Unmarshal(raw, &have) == nil && have == mark {
			log.Info("data dir already restored from this backup; starting on it", "index", b.Index, "term", b.Term)
			return nil
		}
		return fmt.Errorf("restore: data dir %s already holds Raft state: --restore seeds only an empty data dir of a new cluster", dataDir)
	}
	// The state must decode here before anything is written: a backup of
	// a newer build, or one whose state is damaged under a good checksum,
	// fails now and not at the node's start.
	r, err := b.Snapshot()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	state := fsm.New(fsm.Options{})
	if err := state.Restore(io.NopCloser(r)); err != nil {
		return fmt.Errorf("restore: backup %s: %w", path, err)
	}
	// The client addresses the old cluster's nodes published would send
	// this cluster's clients (NotLeader hints) to the old one: each node
	// publishes its own again.
	state.ForgetClientAddrs()
	if err := claimDataDir(dataDir, nodeID, peers); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := seedSnapshot(dataDir, store, peers, b, state, log); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	raw, _ := json.Marshal(mark)
	if err := writeFileSync(filepath.Join(dataDir, restoredFile), raw); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	log.Info("data dir seeded from a backup", "backup", path, "index", b.Index, "term", b.Term,
		"bytes", b.Size, "members", clusterID(peers))
	return nil
}

// seedSnapshot writes state, the backup's, as the data dir's only
// snapshot, and the backup's term as Raft's current term, so that the
// first election is in a later term than any entry the snapshot covers.
func seedSnapshot(dataDir, store string, peers []Peer, b *backup.File, state *fsm.FSM, log hclog.Logger) error {
	db, _, err := openLogStore(dataDir, store, log.Named("wal"))
	if err != nil {
		return err
	}
	defer db.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, log.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store %s: %w", dataDir, err)
	}
	var servers []raft.Server
	for _, p := range peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
	}
	// The transport only encodes peer addresses, as the TCP one does.
	_, trans := raft.NewInmemTransport("")
	sink, err := snaps.Create(raft.SnapshotVersionMax, b.Index, b.Term, raft.Configuration{Servers: servers}, b.Index, trans)
	if err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	snap, err := state.Snapshot()
	if err != nil {
		sink.Cancel() //nolint:errcheck // the snapshot's error is the one to report
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := snap.Persist(sink); err != nil { // closes or cancels the sink
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := db.SetUint64(raftCurrentTermKey, b.Term); err != nil {
		return fmt.Errorf("set current term: %w", err)
	}
	return nil
}
