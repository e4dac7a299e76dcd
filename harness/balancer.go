package harness

import (
	"orderly/internal/freeport"

	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Balancer is an orderlb process in front of a Cluster.
type Balancer struct {
	Addr       string // orderly protocol
	LegacyAddr string // seed protocol
	HTTPAddr   string // side port, with ClusterConfig.HTTP
	process
}

// StartBalancer starts orderlb on free ports in front of every node of c,
// and waits until it knows the leader.
func (c *Cluster) StartBalancer(orderlb string, extra ...string) (*Balancer, error) {
	addr, err := freeport.Addr(c.cfg.Host)
	if err != nil {
		return nil, err
	}
	legacy, err := freeport.Addr(c.cfg.Host)
	if err != nil {
		return nil, err
	}
	b := &Balancer{Addr: addr, LegacyAddr: legacy, process: process{name: "orderlb", LogPath: filepath.Join(c.cfg.Dir, "orderlb.log")}}
	args := append([]string{"--listen", addr, "--legacy-listen", legacy, "--backends", strings.Join(c.Addrs(), ",")}, c.cfg.Certs.Flags("orderlb")...)
	if c.cfg.HTTP {
		if b.HTTPAddr, err = freeport.Addr(c.cfg.Host); err != nil {
			return nil, err
		}
		args = append(args, "--http-addr", b.HTTPAddr)
	}
	args = append(args, extra...)
	if err := b.start(orderlb, args, c.cfg.Env); err != nil {
		return nil, err
	}
	c.Balancers = append(c.Balancers, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if !b.Running() {
			return nil, fmt.Errorf("orderlb exited; see %s", b.LogPath)
		}
		s, err := c.Status(ctx, addr)
		if err == nil && s.LeaderAddr != "" {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("orderlb on %s found no leader: %w (last: %v)", addr, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
