package raftnode

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// readerConn is a net.Conn that reads from a byte stream.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// encodeRPCs writes requests as hashicorp/raft's NetworkTransport does:
// a type byte, then the request in msgpack (and a snapshot's bytes).
func encodeRPCs(t testing.TB, reqs ...any) []byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	enc := codec.NewEncoder(w, &codec.MsgpackHandle{})
	for _, r := range reqs {
		var typ uint8
		switch r := r.(type) {
		case *raft.AppendEntriesRequest:
			typ = rpcAppendEntries
		case *raft.RequestVoteRequest:
			typ = rpcRequestVote
		case *raft.InstallSnapshotRequest:
			typ = rpcInstallSnapshot
		case *raft.TimeoutNowRequest:
			typ = rpcTimeoutNow
		case *raft.RequestPreVoteRequest:
			typ = rpcRequestPreVote
		case []byte: // snapshot data
			w.Write(r)
			continue
		}
		w.WriteByte(typ)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	return buf.Bytes()
}

func header(id string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte("127.0.0.1:7001")}
}

func sampleRPCs(id string) []any {
	entries := make([]*raft.Log, 300)
	for i := range entries {
		entries[i] = &raft.Log{Index: uint64(i + 10), Term: 3, Type: raft.LogCommand,
			Data: bytes.Repeat([]byte{byte(i)}, i*7), Extensions: []byte("x"), AppendedAt: time.Unix(1700000000, int64(i))}
	}
	return []any{
		&raft.AppendEntriesRequest{RPCHeader: header(id), Term: 3, PrevLogEntry: 9, PrevLogTerm: 2, Entries: entries, LeaderCommitIndex: 12},
		&raft.AppendEntriesRequest{RPCHeader: header(id), Term: 3}, // a heartbeat
		&raft.RequestPreVoteRequest{RPCHeader: header(id), Term: 4, LastLogIndex: 309, LastLogTerm: 3},
		&raft.RequestVoteRequest{RPCHeader: header(id), Term: 1 << 40, LastLogIndex: 309, LastLogTerm: 3, LeadershipTransfer: true},
		&raft.TimeoutNowRequest{RPCHeader: header(id)},
		&raft.InstallSnapshotRequest{RPCHeader: header(id), SnapshotVersion: 1, Term: 3, LastLogIndex: 400, LastLogTerm: 3, Size: 70000, Configuration: []byte("cfg")},
		bytes.Repeat([]byte{0xc1}, 70000), // bytes that are no msgpack: they must pass unwalked
		&raft.AppendEntriesRequest{RPCHeader: header(id), Term: 5, LeaderCommitIndex: 410},
	}
}

// decodeAll reads requests back as the transport does.
func decodeAll(r io.Reader, n int) ([]any, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	dec := codec.NewDecoder(br, &codec.MsgpackHandle{})
	var out []any
	for len(out) < n {
		typ, err := br.ReadByte()
		if err != nil {
			return out, err
		}
		var req any
		switch typ {
		case rpcAppendEntries:
			req = &raft.AppendEntriesRequest{}
		case rpcRequestVote:
			req = &raft.RequestVoteRequest{}
		case rpcInstallSnapshot:
			req = &raft.InstallSnapshotRequest{}
		case rpcTimeoutNow:
			req = &raft.TimeoutNowRequest{}
		case rpcRequestPreVote:
			req = &raft.RequestPreVoteRequest{}
		}
		if err := dec.Decode(req); err != nil {
			return out, err
		}
		out = append(out, req)
		if s, ok := req.(*raft.InstallSnapshotRequest); ok {
			data := make([]byte, s.Size)
			if _, err := io.ReadFull(br, data); err != nil {
				return out, err
			}
			out = append(out, data)
		}
	}
	return out, nil
}

// TestScannedConnPassesRaftRPCs: every kind of request, and a snapshot's
// bytes, reach Raft unchanged through the walk, however the reads split.
func TestScannedConnPassesRaftRPCs(t *testing.T) {
	want := sampleRPCs("n2")
	stream := encodeRPCs(t, want...)
	for _, chunk := range []int{1, 7, 4096, len(stream)} {
		sc := newScannedConn(readerConn{r: &chunkReader{b: stream, n: chunk}}, rpcPolicy{sender: "n2", refuseVotes: func() bool { return false }})
		got, err := decodeAll(sc, len(want))
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		for i := range want {
			if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
				t.Fatalf("chunks of %d: request %d differs after the walk:\n got %#v\nwant %#v", chunk, i, got[i], want[i])
			}
		}
	}
}

// normalize drops what msgpack does not keep exactly (time zones).
func normalize(v any) any {
	if ae, ok := v.(*raft.AppendEntriesRequest); ok {
		c := *ae
		c.Entries = nil
		for _, e := range ae.Entries {
			ec := *e
			ec.AppendedAt = ec.AppendedAt.UTC()
			c.Entries = append(c.Entries, &ec)
		}
		return &c
	}
	return v
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// TestScannedConnRefuses: a request that names another sender, or a vote
// while votes are held, fails the read before Raft has the whole request.
func TestScannedConnRefuses(t *testing.T) {
	cases := []struct {
		name   string
		req    any
		policy rpcPolicy
	}{
		{"vote as another member", &raft.RequestVoteRequest{RPCHeader: header("n2"), Term: 1 << 40}, rpcPolicy{sender: "n1"}},
		{"append entries as another member", &raft.AppendEntriesRequest{RPCHeader: header("n3"), Term: 9}, rpcPolicy{sender: "n1"}},
		{"timeout now as another member", &raft.TimeoutNowRequest{RPCHeader: header("n3")}, rpcPolicy{sender: "n1"}},
		{"no sender", &raft.AppendEntriesRequest{Term: 9}, rpcPolicy{sender: "n1"}},
		{"vote while held", &raft.RequestVoteRequest{RPCHeader: header("n1"), Term: 2}, rpcPolicy{sender: "n1", refuseVotes: func() bool { return true }}},
		{"pre-vote while held", &raft.RequestPreVoteRequest{RPCHeader: header("n1"), Term: 2}, rpcPolicy{refuseVotes: func() bool { return true }}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := newScannedConn(readerConn{r: bytes.NewReader(encodeRPCs(t, c.req))}, c.policy)
			got, err := decodeAll(sc, 1)
			if err == nil || !strings.Contains(err.Error(), errRPCRefused.Error()) || len(got) != 0 {
				t.Fatalf("got %d requests, error %v; want a refusal", len(got), err)
			}
		})
	}
	// Plaintext (--insecure): no sender to check, the request passes.
	sc := newScannedConn(readerConn{r: bytes.NewReader(encodeRPCs(t, &raft.RequestVoteRequest{RPCHeader: header("n2"), Term: 3}))}, rpcPolicy{})
	if got, err := decodeAll(sc, 1); err != nil || len(got) != 1 {
		t.Fatalf("insecure: %d requests, %v", len(got), err)
	}
}

// FuzzScannedConn: any byte stream: no panic, and whatever passes the walk
// is a prefix of the input.
func FuzzScannedConn(f *testing.F) {
	f.Add(encodeRPCs(f, sampleRPCs("n1")[1:5]...))
	f.Add([]byte{0, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 0x81, 0xa4, 'S', 'i', 'z', 'e', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := newScannedConn(readerConn{r: bytes.NewReader(b)}, rpcPolicy{sender: "n1", refuseVotes: func() bool { return false }})
		out, _ := io.ReadAll(sc)
		if !bytes.HasPrefix(b, out) {
			t.Fatalf("passed %x, not a prefix of the input", out)
		}
	})
}
