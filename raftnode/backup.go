package raftnode

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"orderly/wire"
)

// Backups (orderctl snapshot save): the leader takes a Raft snapshot
// while orders go on and hands it out in chunks of wire.MaxBackupChunk,
// one Backup request each, read in order through a token. A few may be
// open at once; one left unread for backupIdle is dropped.

const (
	maxOpenBackups = 2
	backupIdle     = 30 * time.Second
)

type backupStream struct {
	group  *replica // whose snapshot
	meta   *raft.SnapshotMeta
	rc     io.ReadCloser
	offset uint64
	sum    hash.Hash
	used   time.Time
	busy   bool // a chunk is being read: no other request may take it
}

type backups struct {
	mu   sync.Mutex
	open map[uint64]*backupStream
}

func newBackups() *backups { return &backups{open: map[uint64]*backupStream{}} }

// backup answers one Backup request, as the leader of the group it asks
// for: the meta group, or (PerShard) a shard this node leads.
func (n *Node) backup(r wire.Backup) (wire.Message, error) {
	g := n.meta
	switch {
	case r.PerShard && r.Shard >= n.count:
		return nil, refuse(ErrInvalid, "backup: the cluster has %d shards, not shard %d", n.count, r.Shard)
	case r.PerShard && n.count > 1:
		var err error
		if g, err = n.replicaByID(r.Shard); err != nil {
			return nil, err
		}
	}
	if g.raft().State() != raft.Leader {
		return nil, n.notLeaderOf(g)
	}
	b := n.backups
	if r.Token == 0 {
		if r.Offset != 0 {
			return nil, refuse(ErrInvalid, "backup: a new backup starts at offset 0, not %d", r.Offset)
		}
		var err error
		if r.Token, err = n.startBackup(g); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	s := b.open[r.Token]
	switch {
	case s == nil || s.group != g:
		b.mu.Unlock()
		return nil, refuse(ErrInvalid, "backup %d of this group is not open on this node (done, idle for %v, or taken by another leader): start again", r.Token, backupIdle)
	case s.busy:
		b.mu.Unlock()
		return nil, refuse(ErrInvalid, "backup %d: a chunk is being read: pieces are read one at a time", r.Token)
	case s.offset != r.Offset:
		b.mu.Unlock()
		return nil, refuse(ErrInvalid, "backup %d is at offset %d, not %d: pieces are read in order, once; start again", r.Token, s.offset, r.Offset)
	}
	s.busy = true
	b.mu.Unlock()

	buf := make([]byte, min(uint64(wire.MaxBackupChunk), uint64(s.meta.Size)-s.offset))
	_, err := io.ReadFull(s.rc, buf)
	b.mu.Lock()
	defer b.mu.Unlock()
	s.busy, s.used = false, time.Now()
	if err != nil {
		b.closeLocked(r.Token)
		return nil, refuse(ErrInternal, "backup %d: read snapshot %s at %d: %v", r.Token, s.meta.ID, s.offset, err)
	}
	s.sum.Write(buf)
	c := wire.BackupChunk{Token: r.Token, Index: s.meta.Index, Term: s.meta.Term, Size: uint64(s.meta.Size), Offset: s.offset, Data: buf}
	s.offset += uint64(len(buf))
	if r.Offset == 0 {
		for _, srv := range s.meta.Configuration.Servers {
			c.Members = append(c.Members, wire.Member{ID: string(srv.ID), RaftAddr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
		}
	}
	if s.offset == uint64(s.meta.Size) {
		c.Last, c.SHA256 = true, s.sum.Sum(nil)
		b.closeLocked(r.Token)
		n.log.Info("backup handed out", "token", r.Token, "index", s.meta.Index, "bytes", s.meta.Size)
	}
	return c, nil
}

// startBackup takes a snapshot of g (or, if nothing was applied since
// the last one, uses that) and opens it under a new token.
func (n *Node) startBackup(g *replica) (uint64, error) {
	b := n.backups
	b.mu.Lock()
	b.reapLocked(time.Now())
	full := len(b.open) >= maxOpenBackups
	b.mu.Unlock()
	if full {
		return 0, refuse(ErrOverloaded, "backup: %d backups already open on the leader; try again when one is done", maxOpenBackups)
	}
	start := time.Now()
	meta, rc, err := openSnapshot(g)
	if err != nil {
		return 0, err
	}
	var tb [8]byte
	rand.Read(tb[:]) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	token := binary.BigEndian.Uint64(tb[:]) | 1
	b.mu.Lock()
	b.open[token] = &backupStream{group: g, meta: meta, rc: rc, sum: sha256.New(), used: time.Now()}
	b.mu.Unlock()
	n.log.Info("backup started", "token", token, "shard", g.shard, "meta", g.meta, "snapshot", meta.ID, "index", meta.Index, "term", meta.Term,
		"bytes", meta.Size, "took", time.Since(start).Round(time.Millisecond))
	return token, nil
}

func openSnapshot(g *replica) (*raft.SnapshotMeta, io.ReadCloser, error) {
	f := g.raft().Snapshot()
	err := g.group.Await(f)
	if err == nil {
		meta, rc, err := f.Open()
		if err != nil {
			return nil, nil, refuse(ErrInternal, "backup: open the snapshot just taken: %v", err)
		}
		return meta, rc, nil
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, nil, refuse(ErrUnavailable, "backup: take a snapshot: %v", err)
	}
	// Nothing applied since the newest snapshot: it is the state.
	list, lerr := g.snaps.List()
	if lerr != nil || len(list) == 0 {
		return nil, nil, refuse(ErrUnavailable, "backup: nothing new to snapshot and no snapshot to send (%v)", lerr)
	}
	meta, rc, oerr := g.snaps.Open(list[0].ID)
	if oerr != nil {
		return nil, nil, refuse(ErrInternal, "backup: open snapshot %s: %v", list[0].ID, oerr)
	}
	return meta, rc, nil
}

// reap closes backups idle for backupIdle.
func (b *backups) reap() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reapLocked(time.Now())
}

func (b *backups) reapLocked(now time.Time) {
	for t, s := range b.open {
		if !s.busy && now.Sub(s.used) > backupIdle {
			b.closeLocked(t)
		}
	}
}

func (b *backups) closeLocked(token uint64) {
	if s := b.open[token]; s != nil {
		s.rc.Close()
		delete(b.open, token)
	}
}

// closeAll closes every open backup (node shutdown).
func (b *backups) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for t := range b.open {
		b.closeLocked(t)
	}
}
