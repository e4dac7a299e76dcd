package peernet

import (
	"net"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Groups hands each Raft stream the port accepts to the transport of the
// group the stream names. Each group's transport checks its own senders
// against its own rules: a node may speak only in the groups it is a
// member of.
type Groups struct {
	log hclog.Logger

	mu   sync.RWMutex
	byID map[GroupID]*Transport
}

// NewGroups is a router with no group yet.
func NewGroups(log hclog.Logger) *Groups {
	return &Groups{log: log, byID: map[GroupID]*Transport{}}
}

// Add routes group's streams to t.
func (g *Groups) Add(group GroupID, t *Transport) {
	g.mu.Lock()
	g.byID[group] = t
	g.mu.Unlock()
}

// Remove stops routing group's streams; streams already handed over are
// its transport's to close.
func (g *Groups) Remove(group GroupID) {
	g.mu.Lock()
	delete(g.byID, group)
	g.mu.Unlock()
}

// Deliver is the Raft port's raftStream: it returns when the stream ends.
func (g *Groups) Deliver(sender string, group GroupID, c net.Conn) {
	g.mu.RLock()
	t := g.byID[group]
	g.mu.RUnlock()
	if t == nil {
		g.log.Warn("refused raft stream: this node hosts no such group", "node", sender, "group", group,
			"remote", c.RemoteAddr().String())
		return
	}
	t.Deliver(sender, c)
}
