package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

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
	Index  uint64 `json:"index"`
	Term   uint64 `json:"term"`
	Shards int    `json:"shards,omitempty"` // a bundle's: its meta group's index and term
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
//
// A bundle (the backup of a sharded cluster) seeds the meta group the
// same way, records the bundle's shard count, and seeds each shard that
// the placement of a new cluster (replicas of the sorted peers) puts on
// this node from the shard's own backup, its configuration that
// placement: every node computes the same, so no shard needs a
// bootstrap either.
func Restore(dataDir, nodeID, store string, peers []Peer, replicas int, path string, log hclog.Logger) error {
	if dataDir == "" || nodeID == "" {
		return errors.New("restore: needs --id and --data-dir")
	}
	if len(peers) == 0 {
		return errors.New("restore: --peers must list the new cluster's members")
	}
	if !isPeer(peers, nodeID) {
		return fmt.Errorf("restore: node %q is not among --peers %s", nodeID, clusterID(peers))
	}
	bundled, err := backup.IsBundle(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if bundled {
		return restoreBundle(dataDir, nodeID, store, peers, replicas, path, log)
	}
	b, err := backup.Open(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer b.Close()
	mark := restoredMark{Index: b.Index, Term: b.Term}
	if done, err := restoredAlready(dataDir, mark, log); done || err != nil {
		return err
	}
	state, err := decodeBackup(b, path)
	if err != nil {
		return err
	}
	if err := claimDataDir(dataDir, nodeID, peers); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := seedSnapshot(dataDir, store, votersOf(peers), b, state, log); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := writeMark(dataDir, mark); err != nil {
		return err
	}
	log.Info("data dir seeded from a backup", "backup", path, "index", b.Index, "term", b.Term,
		"bytes", b.Size, "members", clusterID(peers))
	return nil
}

// restoreBundle is Restore of the backup of a sharded cluster. Shards
// are written before the meta group: until the meta group has state the
// data dir is not a node's, and a --restore run again after a crash
// finds the shards it left and says so.
func restoreBundle(dataDir, nodeID, store string, peers []Peer, replicas int, path string, log hclog.Logger) error {
	b, err := backup.OpenBundle(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer b.Close()
	count := uint32(len(b.Shards))
	mark := restoredMark{Index: b.Meta.Index, Term: b.Meta.Term, Shards: len(b.Shards)}
	if done, err := restoredAlready(dataDir, mark, log); done || err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "shards")); err == nil {
		return fmt.Errorf("restore: data dir %s holds shards/ but no meta group: an unfinished restore? Remove %s and run it again",
			dataDir, filepath.Join(dataDir, "shards"))
	}
	// Every state this node will hold decodes before anything is written.
	meta, err := decodeBackup(b.Meta, path)
	if err != nil {
		return err
	}
	meta.ForgetShardMap() // the old cluster's replicas: each shard's leader publishes the new one
	placed := map[uint32]*fsm.FSM{}
	for id := range count {
		if !slices.ContainsFunc(placementOf(peers, replicas, id), func(s raft.Server) bool { return string(s.ID) == nodeID }) {
			continue
		}
		if placed[id], err = decodeBackup(b.Shards[id], fmt.Sprintf("%s (shard %d)", path, id)); err != nil {
			return err
		}
	}
	if err := claimDataDir(dataDir, nodeID, peers); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := settleShardCount(dataDir, count, false); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for id, state := range placed {
		dir := shardDir(dataDir, id)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("restore: create shard dir %s: %w", dir, err)
		}
		if err := seedSnapshot(dir, store, placementOf(peers, replicas, id), b.Shards[id], state, log.With("shard", id)); err != nil {
			return fmt.Errorf("restore: shard %d: %w", id, err)
		}
	}
	if err := seedSnapshot(dataDir, store, votersOf(peers), b.Meta, meta, log); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := writeMark(dataDir, mark); err != nil {
		return err
	}
	log.Info("data dir seeded from the backup of a sharded cluster", "backup", path, "shards", count,
		"placed here", len(placed), "members", clusterID(peers))
	return nil
}

// restoredAlready says whether dataDir was seeded from the backup mark
// names (a node started again with the same --restore starts normally);
// any other Raft state there is an error.
func restoredAlready(dataDir string, mark restoredMark, log hclog.Logger) (bool, error) {
	if storeOf(dataDir) == "" {
		return false, nil
	}
	var have restoredMark
	if raw, rerr := os.ReadFile(filepath.Join(dataDir, restoredFile)); rerr == nil && json.Unmarshal(raw, &have) == nil && have == mark {
		log.Info("data dir already restored from this backup; starting on it", "index", mark.Index, "term", mark.Term)
		return true, nil
	}
	return false, fmt.Errorf("restore: data dir %s already holds Raft state: --restore seeds only an empty data dir of a new cluster", dataDir)
}

// decodeBackup decodes a backup's state here, before anything is
// written: a backup of a newer build, or one whose state is damaged
// under a good checksum, fails now and not at the node's start. The
// client addresses the old cluster's nodes published would send this
// cluster's clients (NotLeader hints) to the old one: each node
// publishes its own again.
func decodeBackup(b *backup.File, name string) (*fsm.FSM, error) {
	r, err := b.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	state := fsm.New(fsm.Options{})
	if err := state.Restore(io.NopCloser(r)); err != nil {
		return nil, fmt.Errorf("restore: backup %s: %w", name, err)
	}
	state.ForgetClientAddrs()
	return state, nil
}

func writeMark(dataDir string, mark restoredMark) error {
	raw, _ := json.Marshal(mark)
	if err := writeFileSync(filepath.Join(dataDir, restoredFile), raw); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// votersOf is a configuration of peers, every one a voter.
func votersOf(peers []Peer) []raft.Server {
	var servers []raft.Server
	for _, p := range peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
	}
	return servers
}

// seedSnapshot writes state, the backup's, as the data dir's only
// snapshot, and the backup's term as Raft's current term, so that the
// first election is in a later term than any entry the snapshot covers.
func seedSnapshot(dataDir, store string, servers []raft.Server, b *backup.File, state *fsm.FSM, log hclog.Logger) error {
	db, _, err := openLogStore(dataDir, store, log.Named("wal"))
	if err != nil {
		return err
	}
	defer db.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, log.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store %s: %w", dataDir, err)
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
