package raftnode

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Validate reports every problem at once and leaves the config as it was.
func TestValidateReportsEverythingAndChangesNothing(t *testing.T) {
	c := DefaultConfig()
	c.RaftAddr, c.ClientAddr = "127.0.0.1:7001", "127.0.0.1:6001"
	c.Peers = []Peer{{ID: "n2", RaftAddr: "nonsense"}}
	c.Experts, c.MaxFrame, c.CommitTimeout, c.LeaderLeaseTimeout = 0, 5, 0, time.Hour
	c.Shards, c.Replicas = 257, -1
	c.SnapshotInterval = time.Millisecond
	before := c
	err := c.Validate()
	if err == nil {
		t.Fatal("a config with many problems passed")
	}
	for _, want := range []string{"id:", "data dir", "not a host:port", "not among them", "experts 0", "max frame 5",
		"commit timeout", "leader lease timeout 1h0m0s: must not exceed", "shards: shard count 257", "replicas -1",
		"snapshot interval 1ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	if !reflect.DeepEqual(c, before) {
		t.Fatal("Validate changed the config")
	}
	if c.RaftAdvertise != "" || c.withDefaults().RaftAdvertise != c.RaftAddr {
		t.Fatal("the advertised address default belongs to withDefaults")
	}
}
