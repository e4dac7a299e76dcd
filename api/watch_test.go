package api

import (
	"net/url"
	"slices"
	"testing"
)

// TestStartPositions: where a watch starts, per shard, from each way of
// saying it; a position that cannot say which shard is refused.
func TestStartPositions(t *testing.T) {
	for _, c := range []struct {
		query, lastID string
		shards        uint32
		want          []uint64
	}{
		{"", "", 1, []uint64{0}},
		{"from_index=9", "", 1, []uint64{9}},
		{"from_index=9", "12", 1, []uint64{13}},
		{"", "0", 1, []uint64{1}},
		{"", "", 3, []uint64{0, 0, 0}},
		{"from_index=0", "", 3, []uint64{0, 0, 0}},
		{"from_positions=4.0.9", "", 3, []uint64{4, 0, 9}},
		{"from_positions=4.0.9", "5.0.7", 3, []uint64{6, 1, 8}},
	} {
		q, _ := url.ParseQuery(c.query)
		got, err := startPositions(q, c.lastID, c.shards)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q, Last-Event-ID %q, %d shards: %v %v, want %v", c.query, c.lastID, c.shards, got, err, c.want)
		}
	}
	for _, c := range []struct {
		query, lastID string
		shards        uint32
	}{
		{"from_index=9", "", 3},             // which shard's index?
		{"from_positions=4.9", "", 3},       // a shard missing
		{"", "4.0.9.1", 3},                  // one too many
		{"", "4.x.9", 3},                    // not an index
		{"", "18446744073709551615", 1},     // no position after it
		{"", "1.18446744073709551615.1", 3}, // nor here
		{"from_index=-1", "", 1},            // negative
		{"from_positions=1.2", "", 1},       // one shard, two positions
	} {
		q, _ := url.ParseQuery(c.query)
		if got, err := startPositions(q, c.lastID, c.shards); err == nil {
			t.Errorf("%q, Last-Event-ID %q, %d shards: %v, want an error", c.query, c.lastID, c.shards, got)
		}
	}
}
