package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"orderly/backup"
	"orderly/serve"
	"orderly/wire"
)

// maxAdminBody bounds an admin call's body.
const maxAdminBody = 4 << 10

// addMember serves POST /v1/members.
func (g *Gateway) addMember(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	var body addMemberRequest
	if status, err := readBody(w, r, maxAdminBody, &body); err != nil {
		writeJSON(w, status, apiError{Code: wire.CodeBadRequest.String(), Message: "add member: " + err.Error()})
		return
	}
	if body.ID == "" || body.RaftAddr == "" {
		badRequest(w, "add member: id and raft_addr are required")
		return
	}
	voter := body.Voter == nil || *body.Voter
	if _, ok := doAs[wire.OK](g, w, r, from, wire.AddMember{ID: body.ID, RaftAddr: body.RaftAddr, Voter: voter}); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// removeMember serves DELETE /v1/members/{id}.
func (g *Gateway) removeMember(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	if _, ok := doAs[wire.OK](g, w, r, from, wire.RemoveMember{ID: r.PathValue("id")}); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// transferLeader serves POST /v1/leader/transfer.
func (g *Gateway) transferLeader(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	var body transferRequest
	if r.ContentLength != 0 {
		if status, err := readBody(w, r, maxAdminBody, &body); err != nil {
			writeJSON(w, status, apiError{Code: wire.CodeBadRequest.String(), Message: "transfer leader: " + err.Error()})
			return
		}
	}
	if _, ok := doAs[wire.OK](g, w, r, from, wire.TransferLeader{ID: body.ID}); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// snapshotWriteTimeout is how long a download may wait for its client to
// take one chunk.
const snapshotWriteTimeout = 30 * time.Second

// snapshot serves GET /v1/snapshot: a backup file (orderctl snapshot
// save's format, for orderd --restore) streamed from the leader. Its
// Content-Length is known from the first chunk, so a download cut off
// midway is short, and any HTTP client says so.
func (g *Gateway) snapshot(w http.ResponseWriter, r *http.Request, from serve.Caller) {
	// One admission for the whole download: a rate limit must not cut
	// it off midway.
	release, err := g.admit(from, wire.Backup{})
	if err != nil {
		writeWireError(w, err, readCall)
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	started := false
	chunk := func(req wire.Backup) (wire.BackupChunk, error) {
		resp, err := g.send(r, from, req)
		if err != nil {
			return wire.BackupChunk{}, err
		}
		c, ok := resp.(wire.BackupChunk)
		if !ok {
			return wire.BackupChunk{}, wire.Errorf(wire.CodeInternal, "backup answered with %s", resp.Type())
		}
		rc.SetWriteDeadline(time.Now().Add(snapshotWriteTimeout)) //nolint:errcheck // without it the server's WriteTimeout holds
		return c, nil
	}
	begin := func(m backup.Meta) error {
		size, err := m.FileSize()
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="orderly-%d.backup"`, m.Index))
		h.Set("Orderly-Index", strconv.FormatUint(m.Index, 10))
		w.WriteHeader(http.StatusOK)
		started = true
		return nil
	}
	shards := uint32(1)
	if g.opt.Shards != nil {
		if shards, err = g.opt.Shards(r.Context()); err != nil {
			writeWireError(w, wire.Errorf(wire.CodeUnavailable, "snapshot: %v", err), readCall)
			return
		}
	}
	if shards == 1 {
		_, err = backup.Download(w, chunk, begin)
	} else {
		// A bundle: each group's size is known only when its backup
		// starts, so it has no Content-Length; its own SHA-256 tells a
		// cut-off download.
		_, err = backup.DownloadBundle(w, int(shards), func(group int, req wire.Backup) (wire.BackupChunk, error) {
			if group >= 0 {
				req.PerShard, req.Shard = true, uint32(group)
			}
			return chunk(req)
		}, func(group int, m backup.Meta) error {
			if group >= 0 {
				return nil
			}
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="orderly-%d.bundle"`, m.Index))
			h.Set("Orderly-Index", strconv.FormatUint(m.Index, 10))
			h.Set("Orderly-Shards", strconv.FormatUint(uint64(shards), 10))
			w.WriteHeader(http.StatusOK)
			started = true
			return nil
		})
	}
	if err != nil {
		if !started {
			writeWireError(w, err, readCall)
			return
		}
		g.log.Warn("snapshot download cut off", "client", from.Name, "error", err)
	}
}
