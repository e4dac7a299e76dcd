package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

func TestShardMapKeepsTheNewest(t *testing.T) {
	f := New(Options{})
	three := []ShardReplica{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n3", Voter: true}}
	moved := []ShardReplica{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n4"}}
	f.ApplyBatch(logOf(
		AppendSetShard(nil, SetShard{ID: 1, Epoch: 5, Term: 2, Leader: "n1", Replicas: three}),
		AppendSetShard(nil, SetShard{ID: 1, Epoch: 9, Term: 2, Leader: "n2", Replicas: moved}),
		AppendSetShard(nil, SetShard{ID: 1, Epoch: 5, Term: 7, Leader: "n3", Replicas: three}), // older epoch, newer term: stale
		AppendSetShard(nil, SetShard{ID: 1, Epoch: 9, Term: 3, Leader: "n1", Replicas: moved}), // same epoch, newer term
		AppendSetShard(nil, SetShard{ID: 0, Epoch: 1, Term: 1, Leader: "n3", Replicas: three}),
	))
	want := []SetShard{{ID: 0, Epoch: 1, Term: 1, Leader: "n3", Replicas: three}, {ID: 1, Epoch: 9, Term: 3, Leader: "n1", Replicas: moved}}
	if got := f.ShardMap(); !reflect.DeepEqual(got, want) {
		t.Fatalf("map %+v, want %+v", got, want)
	}
	data := mustSnapshot(t, f)
	if v := binary.BigEndian.Uint32(data[len(snapMagic):]); v != 4 {
		t.Fatalf("a state with a shard map wrote snapshot version %d, want 4", v)
	}
	g := New(Options{})
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !sameState(f.st, g.st) || !bytes.Equal(data, mustSnapshot(t, g)) {
		t.Fatal("the shard map does not survive a snapshot")
	}
	// Without a map the snapshot stays version 3, which the previous
	// release reads during a rolling upgrade.
	if v := binary.BigEndian.Uint32(mustSnapshot(t, New(Options{}))[len(snapMagic):]); v != 3 {
		t.Fatalf("a state without a shard map wrote snapshot version %d, want 3", v)
	}
}

func TestSetShardDecodeRefusesMalformed(t *testing.T) {
	good := AppendSetShard(nil, SetShard{ID: 2, Epoch: 1, Term: 1, Leader: "n1", Replicas: []ShardReplica{{ID: "n1", Voter: true}}})
	if c, err := decodeSetShard(good); err != nil || c.ID != 2 || len(c.Replicas) != 1 {
		t.Fatalf("good SetShard: %+v, %v", c, err)
	}
	for i := range len(good) {
		if _, err := decodeSetShard(good[:i]); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("SetShard cut at %d: %v", i, err)
		}
	}
	if _, err := decodeSetShard(append(bytes.Clone(good), 0)); !errors.Is(err, ErrBadCommand) {
		t.Fatal("SetShard with a trailing byte decoded")
	}
	bad := bytes.Clone(good)
	bad[len(bad)-1] = 2 // voter flag
	if _, err := decodeSetShard(bad); !errors.Is(err, ErrBadCommand) {
		t.Fatal("SetShard with voter flag 2 decoded")
	}
}

func FuzzDecodeSetShard(f *testing.F) {
	f.Add(AppendSetShard(nil, SetShard{ID: 2, Epoch: 1, Term: 1, Leader: "n1", Replicas: []ShardReplica{{ID: "n1", Voter: true}, {ID: "n4"}}}))
	f.Add([]byte{byte(CmdSetShard)})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeSetShard(b)
		if err != nil {
			return
		}
		again, err := decodeSetShard(AppendSetShard(nil, c))
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("SetShard does not survive a round trip: %+v vs %+v (%v)", c, again, err)
		}
	})
}
