package peernet

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// Raft's RPC type bytes (hashicorp/raft net_transport.go).
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// testMembers is a configuration of n1, n2, n3 that a test can change.
type testMembers struct {
	mu      sync.Mutex
	servers []raft.Server
}

func newTestMembers() *testMembers {
	m := &testMembers{}
	for _, id := range []string{"n1", "n2", "n3"} {
		m.servers = append(m.servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":7000")})
	}
	return m
}

func (m *testMembers) config() (raft.Configuration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return raft.Configuration{Servers: append([]raft.Server(nil), m.servers...)}, nil
}

func (m *testMembers) remove(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, s := range m.servers {
		if string(s.ID) == id {
			m.servers = append(m.servers[:i], m.servers[i+1:]...)
			return
		}
	}
}

// testTransport is a transport whose inbound streams a test opens with
// stream, and whose Raft side is a goroutine that answers every request
// that reaches it and keeps it.
type testTransport struct {
	t       *Transport
	members *testMembers
	votes   atomic.Bool  // held
	leader  atomic.Value // the node it follows, a string

	mu   sync.Mutex
	seen []any // requests that reached Raft
}

func newTestTransport(t *testing.T) *testTransport {
	tt := &testTransport{members: newTestMembers()}
	tt.t = NewTransport(NewDialer(nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, 0),
		Rules{Config: tt.members.config, RefuseVotes: tt.votes.Load, Leader: tt.followed,
			Seeds: map[string]raft.ServerAddress{"n1": "n1:7000"}}, hclog.NewNullLogger())
	tt.leader.Store("n2")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case rpc := <-tt.t.Consumer():
				tt.mu.Lock()
				tt.seen = append(tt.seen, rpc.Command)
				tt.mu.Unlock()
				rpc.Respond(&raft.AppendEntriesResponse{}, nil)
			case <-tt.t.closing:
				return
			}
		}
	}()
	t.Cleanup(func() { tt.t.Close(); <-done })
	return tt
}

// followed is Rules.leader: the leader set, at its address, in term 5.
func (tt *testTransport) followed() (string, string, uint64) {
	id := tt.leader.Load().(string)
	return id, id + ":7000", 5
}

func (tt *testTransport) reached() []any {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return append([]any(nil), tt.seen...)
}

// stream opens an inbound Raft stream as the node certificate sender.
func (tt *testTransport) stream(t *testing.T, sender string) *rawStream {
	client, server := net.Pipe()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tt.t.Deliver(sender, server)
		server.Close()
	}()
	t.Cleanup(func() { client.Close(); <-ended })
	return &rawStream{c: client, r: bufio.NewReader(client), ended: ended}
}

// rawStream writes Raft requests byte by byte and reads the answers.
type rawStream struct {
	c     net.Conn
	r     *bufio.Reader
	ended chan struct{}
}

// send writes typ and body and reads the answer's error ("" if Raft
// answered).
func (s *rawStream) send(t *testing.T, typ uint8, body []byte) (string, error) {
	t.Helper()
	s.c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a failed deadline fails the write
	if _, err := s.c.Write(append([]byte{typ}, body...)); err != nil {
		return "", err
	}
	dec := codec.NewDecoder(s.r, &codec.MsgpackHandle{})
	var rpcErr string
	if err := dec.Decode(&rpcErr); err != nil {
		return "", err
	}
	var resp raft.AppendEntriesResponse
	if err := dec.Decode(&resp); err != nil {
		return "", err
	}
	return rpcErr, nil
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := codec.NewEncoder(&b, &codec.MsgpackHandle{}).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func hdr(id, addr string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(addr)}
}

// TestInboxChecksWhatRaftDecoded: n2's certificate may send requests
// that name n2 at n2's address; a request naming another node or address,
// a vote while votes are held, and the encodings that fooled the old
// stream walker (a second ID key in binary, an ID key as an array) never
// reach Raft.
func TestInboxChecksWhatRaftDecoded(t *testing.T) {
	tt := newTestTransport(t)
	s := tt.stream(t, "n2")
	ok := []struct {
		typ uint8
		req any
	}{
		{rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 3, PrevLogEntry: 1, PrevLogTerm: 1}},
		{rpcRequestVote, &raft.RequestVoteRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 4}},
		{rpcRequestPreVote, &raft.RequestPreVoteRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 4}},
		{rpcTimeoutNow, &raft.TimeoutNowRequest{RPCHeader: hdr("n2", "n2:7000")}},
		{rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 5}}, // a heartbeat: Raft's fast path
	}
	for _, r := range ok {
		if rpcErr, err := s.send(t, r.typ, encode(t, r.req)); err != nil || rpcErr != "" {
			t.Fatalf("%T from its own node: %q, %v", r.req, rpcErr, err)
		}
	}
	if n := len(tt.reached()); n != len(ok) {
		t.Fatalf("%d of %d good requests reached Raft", n, len(ok))
	}

	refused := []struct {
		name string
		typ  uint8
		body []byte
	}{
		{"another node's id", rpcRequestVote, encode(t, &raft.RequestVoteRequest{RPCHeader: hdr("n1", "n1:7000"), Term: 1 << 40})},
		{"another node's id at its own address", rpcTimeoutNow, encode(t, &raft.TimeoutNowRequest{RPCHeader: hdr("n1", "n2:7000")})},
		{"another address", rpcAppendEntries, encode(t, &raft.AppendEntriesRequest{RPCHeader: hdr("n2", "evil:7000"), Term: 3, PrevLogEntry: 1})},
		{"a deprecated leader field that differs", rpcAppendEntries, encode(t, legacyLeader("n2", "n2:7000", "n1:7000"))},
		{"no id at all", rpcTimeoutNow, encode(t, &raft.TimeoutNowRequest{})},
		{"ID as text, then ID as binary naming n1", rpcRequestVote, duplicateIDVote("n2", "n1", true)},
		{"ID as an array key naming n1", rpcRequestVote, arrayKeyVote("n1")},
	}
	for _, r := range refused {
		rpcErr, err := s.send(t, r.typ, r.body)
		if err == nil && rpcErr == "" {
			t.Errorf("%s: answered by Raft", r.name)
		}
		if err != nil { // a stream Raft could not decode ends; open another
			s = tt.stream(t, "n2")
		}
	}
	if n := len(tt.reached()); n != len(ok) {
		t.Fatalf("%d requests reached Raft, want the %d good ones only: %+v", n, len(ok), tt.reached()[len(ok):])
	}

	tt.leader.Store("n1")
	if rpcErr, err := s.send(t, rpcTimeoutNow, encode(t, &raft.TimeoutNowRequest{RPCHeader: hdr("n2", "n2:7000")})); err != nil || rpcErr == "" {
		t.Fatalf("TimeoutNow from a node that does not lead: %q, %v; want refused", rpcErr, err)
	}
	tt.votes.Store(true)
	if rpcErr, err := s.send(t, rpcRequestVote, encode(t, &raft.RequestVoteRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 6})); err != nil || rpcErr == "" {
		t.Fatalf("a vote while votes are held: %q, %v; want refused", rpcErr, err)
	}
}

// TestNonMembersAreRefused: a node certificate that names no member gets
// no stream; a member removed while its stream is open is cut off at its
// next request.
func TestNonMembersAreRefused(t *testing.T) {
	tt := newTestTransport(t)
	stranger := tt.stream(t, "n9")
	select {
	case <-stranger.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("n9's stream was taken")
	}
	s := tt.stream(t, "n3")
	ae := encode(t, &raft.AppendEntriesRequest{RPCHeader: hdr("n3", "n3:7000"), Term: 3, PrevLogEntry: 1})
	if rpcErr, err := s.send(t, rpcAppendEntries, ae); err != nil || rpcErr != "" {
		t.Fatalf("n3 while a member: %q, %v", rpcErr, err)
	}
	tt.members.remove("n3")
	if rpcErr, err := s.send(t, rpcAppendEntries, ae); err == nil && rpcErr == "" {
		t.Fatal("n3 after its removal: answered by Raft")
	}
	select {
	case <-s.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the removed member's stream stayed open")
	}
	if n := len(tt.reached()); n != 1 {
		t.Fatalf("%d requests reached Raft, want 1", n)
	}
}

// TestEmptyConfiguration: a node that knows no configuration yet takes
// any node certificate's stream only if it has no --peers to ask (join
// mode); with --peers, a sender not among them, and that none of them
// vouches for, is refused (a stranger's heartbeat at term 1 would
// otherwise stop a new cluster's bootstrap, or write its first
// configuration), and one among them is taken.
func TestEmptyConfiguration(t *testing.T) {
	for _, seeded := range []bool{false, true} {
		tt := newTestTransport(t)
		if !seeded {
			tt.t.rules.Seeds = nil
		}
		for _, id := range []string{"n1", "n2", "n3"} {
			tt.members.remove(id)
		}
		s := tt.stream(t, "n7")
		rpcErr, err := s.send(t, rpcAppendEntries, encode(t, &raft.AppendEntriesRequest{RPCHeader: hdr("n7", "n7:7000"), Term: 3, PrevLogEntry: 1}))
		if accepted := err == nil && rpcErr == ""; accepted == seeded {
			t.Fatalf("with --peers %v, a stranger's AppendEntries: %q, %v", seeded, rpcErr, err)
		}
	}
	tt := newTestTransport(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		tt.members.remove(id)
	}
	s := tt.stream(t, "n1")
	if rpcErr, err := s.send(t, rpcAppendEntries, encode(t, &raft.AppendEntriesRequest{RPCHeader: hdr("n1", "n1:7000"), Term: 3, PrevLogEntry: 1})); err != nil || rpcErr != "" {
		t.Fatalf("a node of --peers, to a node that knows no configuration: %q, %v", rpcErr, err)
	}
}

// duplicateIDVote is a RequestVote map with the key ID twice: as text
// naming first, then (binary or text) naming second. go-msgpack keeps the
// last.
func duplicateIDVote(first, second string, binaryKey bool) []byte {
	var b []byte
	b = append(b, 0x84) // map of 4
	b = appendStr(b, "ID")
	b = appendBin(b, first)
	if binaryKey {
		b = appendBin(b, "ID")
	} else {
		b = appendStr(b, "ID")
	}
	b = appendBin(b, second)
	b = appendStr(b, "Addr")
	b = appendBin(b, second+":7000")
	b = appendStr(b, "Term")
	b = append(b, 0xcf, 0, 0, 1, 0, 0, 0, 0, 0) // 2^40
	return b
}

// arrayKeyVote is a RequestVote map whose ID key is an array.
func arrayKeyVote(id string) []byte {
	var b []byte
	b = append(b, 0x83)
	b = append(b, 0x92) // array of 2 as the key
	b = appendStr(b, "I")
	b = appendStr(b, "D")
	b = appendBin(b, id)
	b = appendStr(b, "Addr")
	b = appendBin(b, id+":7000")
	b = appendStr(b, "Term")
	b = append(b, 0x05)
	return b
}

func appendStr(b []byte, s string) []byte { return append(append(b, 0xa0|byte(len(s))), s...) }
func appendBin(b []byte, s string) []byte { return append(append(b, 0xc4, byte(len(s))), s...) }

// FuzzInbox: whatever bytes n2's certificate sends, a request that
// reaches Raft names n2 at n2's address, and nothing panics.
func FuzzInbox(f *testing.F) {
	for _, seed := range [][]byte{
		append([]byte{rpcAppendEntries}, encode(f, &raft.AppendEntriesRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 3, PrevLogEntry: 1})...),
		append([]byte{rpcRequestVote}, duplicateIDVote("n2", "n1", true)...),
		append([]byte{rpcRequestVote}, duplicateIDVote("n2", "n1", false)...),
		append([]byte{rpcRequestVote}, arrayKeyVote("n1")...),
		append([]byte{rpcInstallSnapshot}, encode(f, &raft.InstallSnapshotRequest{RPCHeader: hdr("n2", "n2:7000"), Term: 3, Size: 4})...),
		{rpcTimeoutNow, 0x80},
		{0xff},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tt := newTestTransport(t)
		s := tt.stream(t, "n2")
		s.c.SetDeadline(time.Now().Add(time.Second)) //nolint:errcheck // a failed deadline fails the write
		go func() {
			s.c.Write(data) //nolint:errcheck // the stream may end first
			// Drain answers so the transport is never stuck writing them.
			buf := make([]byte, 4096)
			for {
				if _, err := s.c.Read(buf); err != nil {
					return
				}
			}
		}()
		time.Sleep(5 * time.Millisecond)
		s.c.Close()
		<-s.ended
		for _, cmd := range tt.reached() {
			h, _, _, _, err := senderOf(cmd)
			if err != nil || string(h.ID) != "n2" || string(h.Addr) != "n2:7000" {
				t.Fatalf("%+v reached Raft from n2's certificate", cmd)
			}
		}
	})
}

// legacyLeader is an AppendEntries whose deprecated Leader field, which
// Raft still falls back to, differs from its header.
func legacyLeader(id, addr, leader string) *raft.AppendEntriesRequest {
	r := &raft.AppendEntriesRequest{RPCHeader: hdr(id, addr), Term: 3, PrevLogEntry: 1}
	//lint:ignore SA1019 the deprecated field is the attack
	r.Leader = []byte(leader)
	return r
}
