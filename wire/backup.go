package wire

import (
	"encoding/binary"
	"errors"
)

// ErrChunkTooLarge: a BackupChunk claims more than MaxBackupChunk bytes.
var ErrChunkTooLarge = errors.New("wire: backup chunk larger than the maximum")

// MaxBackupChunk bounds BackupChunk.Data: well under the default frame
// and reply budget (1 MiB).
const MaxBackupChunk = 256 << 10

// Backup asks the leader for the next piece of a snapshot of the state
// machine (admin; orderctl snapshot save). Token 0 starts a new backup:
// the leader takes a Raft snapshot while orders go on and answers with
// its first chunk and a token; the client then asks for each next Offset
// with that token until a chunk is Last. Pieces are read in order, once.
//
// A sharded cluster is backed up group by group: without PerShard the
// meta group's (of a cluster of one shard, everything), with it Shard's,
// from that shard's leader (a trailing shard id on the wire).
type Backup struct {
	Token    uint64
	Offset   uint64
	PerShard bool
	Shard    uint32
}

func (Backup) Type() Type { return TypeBackup }
func (b Backup) AppendTo(dst []byte) []byte {
	dst = appendU64(appendU64(dst, b.Token), b.Offset)
	if b.PerShard {
		dst = appendU32(dst, b.Shard)
	}
	return dst
}

// DecodeBackup decodes a Backup payload.
func DecodeBackup(b []byte) (Backup, error) {
	d := decoder{b: b}
	r := Backup{Token: d.u64(), Offset: d.u64()}
	if d.err == nil && len(d.b) > 0 {
		r.PerShard, r.Shard = true, d.u32()
	}
	return r, d.finish("Backup")
}

// BackupChunk is one piece of a backup.
type BackupChunk struct {
	Token       uint64
	Index, Term uint64 // the last Raft entry the snapshot includes
	Size        uint64 // bytes of the whole snapshot
	Offset      uint64 // of Data in the snapshot
	Data        []byte
	Members     []Member // the configuration at Index (first chunk)
	// SHA256, with the Last chunk, is the digest of the whole snapshot as
	// the leader read it; the client checks what it received against it.
	SHA256 []byte
	Last   bool
}

func (BackupChunk) Type() Type { return TypeBackupChunk }
func (c BackupChunk) AppendTo(dst []byte) []byte {
	for _, v := range []uint64{c.Token, c.Index, c.Term, c.Size, c.Offset} {
		dst = appendU64(dst, v)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Data)))
	dst = append(dst, c.Data...)
	dst = appendMembers(dst, c.Members)
	dst = append(dst, uint8(len(c.SHA256)))
	dst = append(dst, c.SHA256...)
	return appendBool(dst, c.Last)
}

// DecodeBackupChunk decodes a BackupChunk payload.
func DecodeBackupChunk(b []byte) (BackupChunk, error) {
	d := decoder{b: b}
	c := BackupChunk{Token: d.u64(), Index: d.u64(), Term: d.u64(), Size: d.u64(), Offset: d.u64()}
	if n := d.u32(); n > MaxBackupChunk {
		d.err = ErrChunkTooLarge
	} else if data := d.take(int(n)); len(data) > 0 {
		c.Data = append([]byte(nil), data...)
	}
	c.Members = d.members()
	if data := d.take(int(d.u8())); len(data) > 0 {
		c.SHA256 = append([]byte(nil), data...)
	}
	c.Last = d.u8() != 0
	return c, d.finish("BackupChunk")
}
