package feed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"orderly/wire"
)

// ShardError is how a shard's stream ended a FollowShards: its Compacted
// (the shard no longer holds the position asked for) or its refusal.
type ShardError struct {
	Shard uint32
	Err   error
}

func (e *ShardError) Error() string { return fmt.Sprintf("shard %d: %v", e.Shard, e.Err) }
func (e *ShardError) Unwrap() error { return e.Err }

// FollowShards follows every customer's orders of len(from) shards,
// shard i from index from[i] (0: from now), each shard's feed with
// Follow, and calls fn with each frame and its shard, one call at a time:
// each shard's frames in its index order, each entry once; frames of
// different shards in the order they arrive (no order exists between
// shards). The position to resume from is, per shard, the last frame's
// Through + 1. It returns when ctx ends (nil), fn fails (its error), or
// a shard's stream ends (a *ShardError: Compacted or a refusal); every
// shard's stream has ended when it returns.
func FollowShards(ctx context.Context, from []uint64, source func(shard uint32) Source, fn func(shard uint32, e wire.Events) error) error {
	type frame struct {
		shard uint32
		e     wire.Events
	}
	var wg sync.WaitGroup
	defer wg.Wait() // deferred first, so it runs after stop: every stream ends with run
	run, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	frames := make(chan frame)
	for i := range from {
		sh := uint32(i)
		w := wire.Watch{From: from[i], Customer: wire.WatchAll, PerShard: true, Shard: sh}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := Follow(run, source(sh), w, func(_ string, e wire.Events) error {
				select {
				case frames <- frame{sh, e}:
					return nil
				case <-run.Done():
					return run.Err()
				}
			})
			if err != nil {
				stop(&ShardError{Shard: sh, Err: err})
			}
		}()
	}
	for {
		select {
		case f := <-frames:
			if err := fn(f.shard, f.e); err != nil {
				stop(err)
				return err
			}
		case <-run.Done():
			if ctx.Err() != nil {
				return nil
			}
			return context.Cause(run)
		}
	}
}

// FormatPositions writes a position per shard as "p0.p1...": a resume
// token of a watch of every customer of a sharded cluster.
func FormatPositions(pos []uint64) string {
	var b strings.Builder
	for i, p := range pos {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(p, 10))
	}
	return b.String()
}

// ParsePositions reads what FormatPositions wrote for a cluster of
// shards shards: one index below 2^64-1 per shard.
func ParsePositions(v string, shards uint32) ([]uint64, error) {
	// Counted before split: a header of a million dots is one string, not
	// a million.
	if n := strings.Count(v, ".") + 1; n != int(shards) {
		return nil, fmt.Errorf("%d positions, the cluster has %d shards", n, shards)
	}
	parts := strings.Split(v, ".")
	pos := make([]uint64, shards)
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n == ^uint64(0) {
			return nil, fmt.Errorf("position %q is not an index", p)
		}
		pos[i] = n
	}
	return pos, nil
}
