// Package shard is the fixed function that places a customer in a shard.
//
// A customer's slot is the CRC-32C (Castagnoli) of its id's four
// big-endian bytes, modulo Slots: hashing spreads the consecutive ids a
// shop hands out over every shard, as Redis Cluster's 16,384 hash slots
// do for keys. A cluster of S shards gives shard i the contiguous slots
// [i*Slots/S, (i+1)*Slots/S). S is fixed when the cluster is created;
// since a shard owns a range of slots, a later split halves a range
// without moving any other shard's customers.
//
// The function is part of the protocol: every client, balancer and node
// must agree on it, so it never changes.
package shard

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Slots is the number of hash slots customers are spread over.
const Slots = 16384

// MaxShards bounds a cluster's shard count: every node hosts a Raft group
// per shard it holds, and each costs heartbeats and an fsync stream.
const MaxShards = 256

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SlotOf is customer's slot.
func SlotOf(customer int32) uint16 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(customer))
	return uint16(crc32.Checksum(b[:], castagnoli) % Slots)
}

// Range is the slots [Lo, Hi) shard id holds in a cluster of count shards.
func Range(id, count uint32) (lo, hi uint32) {
	return id * Slots / count, (id + 1) * Slots / count
}

// Of is the shard that holds customer in a cluster of count shards.
func Of(customer int32, count uint32) uint32 {
	if count <= 1 {
		return 0
	}
	slot := uint32(SlotOf(customer))
	// The shard whose range holds slot: Range's bounds inverted, then
	// stepped past the one rounding can leave it short of.
	id := slot * count / Slots
	for id+1 < count {
		if lo, _ := Range(id+1, count); slot < lo {
			break
		}
		id++
	}
	return id
}

// Check says whether count is a valid shard count.
func Check(count uint32) error {
	if count < 1 || count > MaxShards {
		return fmt.Errorf("shard count %d: want 1 to %d", count, MaxShards)
	}
	return nil
}
