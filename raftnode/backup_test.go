package raftnode

import (
	"testing"

	"orderly/wire"
)

// TestBackupIsReadInOrderOnce: a backup is the leader's; pieces come in
// order through their token; a made-up token, a skipped or repeated
// offset and a third open backup are refused, and a backup read to its
// end is closed.
func TestBackupIsReadInOrderOnce(t *testing.T) {
	tc := newTestCluster(t)
	leader := tc.leader()
	if _, ok := call(t, leader, wire.Order{CustomerID: 1, OrderNumber: 1, ClientID: 5, Seq: 1}).(wire.LaptopInfo); !ok {
		t.Fatal("order refused")
	}
	code := func(m wire.Message) wire.Code {
		if e, ok := m.(*wire.Error); ok {
			return e.Code
		}
		return 0
	}
	if c := code(call(t, tc.followerOf(leader), wire.Backup{})); c != wire.CodeNotLeader {
		t.Fatalf("backup from a follower: %v, want NotLeader", c)
	}
	if c := code(call(t, leader, wire.Backup{Offset: 10})); c != wire.CodeBadRequest {
		t.Fatalf("a new backup at offset 10: %v, want BadRequest", c)
	}
	if c := code(call(t, leader, wire.Backup{Token: 12345, Offset: 0})); c != wire.CodeBadRequest {
		t.Fatalf("a made-up token: %v, want BadRequest", c)
	}
	first, ok := call(t, leader, wire.Backup{}).(wire.BackupChunk)
	if !ok || !first.Last || len(first.SHA256) != 32 || uint64(len(first.Data)) != first.Size || len(first.Members) != 3 {
		t.Fatalf("a one-chunk backup: %+v", first)
	}
	if c := code(call(t, leader, wire.Backup{Token: first.Token})); c != wire.CodeBadRequest {
		t.Fatalf("reading a finished backup again: %v, want BadRequest", c)
	}
	// Two open at once at most (opened and left unread).
	var open []uint64
	for range maxOpenBackups {
		tok, err := leader.startBackup(leader.meta)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, tok)
	}
	if c := code(call(t, leader, wire.Backup{})); c != wire.CodeOverloaded {
		t.Fatalf("a third open backup: %v, want Overloaded", c)
	}
	if c := code(call(t, leader, wire.Backup{Token: open[0], Offset: 7})); c != wire.CodeBadRequest {
		t.Fatalf("skipping to offset 7: %v, want BadRequest", c)
	}
	if c, ok := call(t, leader, wire.Backup{Token: open[0]}).(wire.BackupChunk); !ok || !c.Last {
		t.Fatalf("reading an open backup from 0: %v", c)
	}
}
