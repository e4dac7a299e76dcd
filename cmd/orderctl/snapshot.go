package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"orderly/backup"
	"orderly/fsm"
	"orderly/wire"
)

func snapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "back the cluster up, and look into a backup (restore: orderd --restore)", Args: cobra.NoArgs}
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "take a consistent snapshot of the state machine from the leader, while orders go on, into FILE (admin)",
		Args:  cobra.ExactArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return g.saveSnapshot(args[0]) },
	}
	inspect := &cobra.Command{
		Use:   "inspect FILE",
		Short: "check a backup's checksum and say what is in it",
		Args:  cobra.ExactArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return g.inspectSnapshot(args[0]) },
	}
	cmd.AddCommand(save, inspect)
	return cmd
}

type savedJSON struct {
	File    string  `json:"file"`
	Index   uint64  `json:"index"`
	Term    uint64  `json:"term"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Shards  int     `json:"shards"` // 1: a backup file; more: a bundle (index, term: its meta group's)
}

// saveSnapshot reads a backup chunk by chunk into FILE.part, checks the
// leader's digest, and renames it into place only when whole.
func (g *globals) saveSnapshot(path string) error {
	c, err := g.newClient(0)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout+time.Second)
	shards, err := c.ShardCount(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	chunk := func(group int, req wire.Backup) (wire.BackupChunk, error) {
		ctx, cancel := context.WithTimeout(context.Background(), g.Timeout+time.Second)
		defer cancel()
		if group >= 0 {
			req.PerShard, req.Shard = true, uint32(group)
		}
		return c.Backup(ctx, req)
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	defer os.Remove(part) // gone once renamed; left behind only on failure
	defer f.Close()
	var meta backup.Meta
	if shards == 1 {
		meta, err = backup.Download(f, func(req wire.Backup) (wire.BackupChunk, error) { return chunk(-1, req) }, func(backup.Meta) error { return nil })
	} else { // a bundle: the meta group's backup, then each shard's from its leader
		var metas []backup.Meta
		metas, err = backup.DownloadBundle(f, int(shards), chunk, nil)
		if len(metas) > 0 {
			meta = metas[0]
		}
	}
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapshot save: sync %s: %w", part, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot save: close %s: %w", part, err)
	}
	if err := os.Rename(part, path); err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() //nolint:errcheck // best effort: the rename is what matters
		d.Close()
	}
	took := time.Since(start)
	what := "snapshot"
	if shards > 1 {
		what = fmt.Sprintf("%d shards and the meta group; meta", shards)
	}
	return g.Print(savedJSON{File: path, Index: meta.Index, Term: meta.Term, Bytes: st.Size(), Seconds: took.Seconds(), Shards: int(shards)},
		"saved %s: %s at index %d, term %d, %d bytes in %v\n", path, what, meta.Index, meta.Term, st.Size(), took.Round(time.Millisecond))
}

type inspectJSON struct {
	File      string            `json:"file"`
	Index     uint64            `json:"index"`
	Term      uint64            `json:"term"`
	Created   time.Time         `json:"created"`
	Bytes     uint64            `json:"snapshot_bytes"`
	Members   []backup.Member   `json:"members"`
	Customers int               `json:"customers"`
	Orders    uint64            `json:"orders"`
	Sessions  int               `json:"sessions"`
	Published map[string]string `json:"client_addrs"`
}

func (g *globals) inspectSnapshot(path string) error {
	bundled, err := backup.IsBundle(path)
	if err != nil {
		return fmt.Errorf("snapshot inspect: %w", err)
	}
	if !bundled {
		f, err := backup.Open(path)
		if err != nil {
			return fmt.Errorf("snapshot inspect: %w", err)
		}
		defer f.Close()
		out, err := inspectFile(path, f)
		if err != nil {
			return err
		}
		if g.JSON {
			return g.Print(out, "")
		}
		fmt.Fprintf(g.Out, "%s: checksum ok\n", path)
		g.printInspected(out)
		return nil
	}
	b, err := backup.OpenBundle(path)
	if err != nil {
		return fmt.Errorf("snapshot inspect: %w", err)
	}
	defer b.Close()
	out := bundleJSON{File: path}
	for i, f := range append([]*backup.File{b.Meta}, b.Shards...) {
		one, err := inspectFile(path, f)
		if err != nil {
			return err
		}
		if i == 0 {
			out.Meta = one
		} else {
			out.Shards = append(out.Shards, one)
		}
	}
	if g.JSON {
		return g.Print(out, "")
	}
	fmt.Fprintf(g.Out, "%s: a backup of %d shards, every checksum ok\nmeta group: ", path, len(out.Shards))
	g.printInspected(out.Meta)
	for i, s := range out.Shards {
		fmt.Fprintf(g.Out, "shard %d: ", i)
		g.printInspected(s)
	}
	return nil
}

type bundleJSON struct {
	File   string        `json:"file"`
	Meta   inspectJSON   `json:"meta"`
	Shards []inspectJSON `json:"shards"`
}

// inspectFile decodes one backup's state and says what it holds.
func inspectFile(path string, f *backup.File) (inspectJSON, error) {
	r, err := f.Snapshot()
	if err != nil {
		return inspectJSON{}, err
	}
	state := fsm.New(fsm.Options{})
	if err := state.Restore(io.NopCloser(r)); err != nil {
		return inspectJSON{}, fmt.Errorf("snapshot inspect %s: the checksum holds but the state does not decode: %w", path, err)
	}
	s := state.Summary()
	return inspectJSON{File: path, Index: f.Index, Term: f.Term, Created: f.Created.UTC(), Bytes: f.Size, Members: f.Members,
		Customers: s.Customers, Orders: s.Orders, Sessions: s.Sessions, Published: s.Members}, nil
}

func (g *globals) printInspected(out inspectJSON) {
	fmt.Fprintf(g.Out, "index %d, term %d, taken %s\n%d bytes of state: %d customers, %d orders, %d client sessions\nmembers:\n",
		out.Index, out.Term, out.Created.Format(time.RFC3339), out.Bytes, out.Customers, out.Orders, out.Sessions)
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].ID < out.Members[j].ID })
	for _, m := range out.Members {
		fmt.Fprintf(g.Out, "  %-8s raft %-21s client %s\n", m.ID, m.RaftAddr, out.Published[m.ID])
	}
}
