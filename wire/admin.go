package wire

// Empty messages: requests with no fields, and the OK answer.
type (
	// Status asks a node (or the balancer) to describe itself.
	Status struct{}
	// ReadIndex asks the leader for a linearizable read index (node to node).
	ReadIndex struct{}
	// Members asks for the cluster's members.
	Members struct{}
	// OK answers an admin call that succeeded.
	OK struct{}
)

func (Status) Type() Type                    { return TypeStatus }
func (Status) AppendTo(dst []byte) []byte    { return dst }
func (ReadIndex) Type() Type                 { return TypeReadIndex }
func (ReadIndex) AppendTo(dst []byte) []byte { return dst }
func (Members) Type() Type                   { return TypeMembers }
func (Members) AppendTo(dst []byte) []byte   { return dst }
func (OK) Type() Type                        { return TypeOK }
func (OK) AppendTo(dst []byte) []byte        { return dst }

// decodeEmpty checks that an empty message has no payload.
func decodeEmpty(b []byte, what string) error {
	d := decoder{b: b}
	return d.finish(what)
}

// Member is one server of the cluster.
type Member struct {
	ID         string
	RaftAddr   string
	ClientAddr string // empty until the node has published it
	Voter      bool
}

func (m Member) appendTo(dst []byte) []byte {
	dst = appendStr(dst, m.ID)
	dst = appendStr(dst, m.RaftAddr)
	dst = appendStr(dst, m.ClientAddr)
	return appendBool(dst, m.Voter)
}

func (d *decoder) member() Member {
	return Member{ID: d.str(), RaftAddr: d.str(), ClientAddr: d.str(), Voter: d.u8() != 0}
}

func appendMembers(dst []byte, ms []Member) []byte {
	dst = append(dst, byte(len(ms)>>8), byte(len(ms)))
	for _, m := range ms {
		dst = m.appendTo(dst)
	}
	return dst
}

func (d *decoder) members() []Member {
	n := int(d.u16())
	var ms []Member
	// Each member takes at least 7 bytes: do not trust n beyond that.
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b) < 7 {
			d.err = ErrShortPayload
			break
		}
		ms = append(ms, d.member())
	}
	return ms
}

// Stat is one named counter, e.g. a balancer's cache hits.
type Stat struct {
	Name  string
	Value uint64
}

// StatusInfo describes a node: its Raft role and progress, and members.
type StatusInfo struct {
	ID           string
	Role         string // leader, follower, candidate, shutdown, or balancer
	LeaderID     string
	LeaderAddr   string // the leader's client address
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastIndex    uint64
	Members      []Member
	Stats        []Stat
}

func (StatusInfo) Type() Type { return TypeStatusInfo }

func (s StatusInfo) AppendTo(dst []byte) []byte {
	dst = appendStr(dst, s.ID)
	dst = appendStr(dst, s.Role)
	dst = appendStr(dst, s.LeaderID)
	dst = appendStr(dst, s.LeaderAddr)
	dst = appendU64(dst, s.Term)
	dst = appendU64(dst, s.CommitIndex)
	dst = appendU64(dst, s.AppliedIndex)
	dst = appendU64(dst, s.LastIndex)
	dst = appendMembers(dst, s.Members)
	dst = append(dst, byte(len(s.Stats)>>8), byte(len(s.Stats)))
	for _, st := range s.Stats {
		dst = appendStr(dst, st.Name)
		dst = appendU64(dst, st.Value)
	}
	return dst
}

// DecodeStatusInfo decodes a StatusInfo payload.
func DecodeStatusInfo(b []byte) (StatusInfo, error) {
	d := decoder{b: b}
	s := StatusInfo{ID: d.str(), Role: d.str(), LeaderID: d.str(), LeaderAddr: d.str(),
		Term: d.u64(), CommitIndex: d.u64(), AppliedIndex: d.u64(), LastIndex: d.u64()}
	s.Members = d.members()
	n := int(d.u16())
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b) < 10 {
			d.err = ErrShortPayload
			break
		}
		s.Stats = append(s.Stats, Stat{Name: d.str(), Value: d.u64()})
	}
	return s, d.finish("StatusInfo")
}

// ReadIndexReply carries the leader's commit index, confirmed as current
// by a quorum after the read was asked for.
type ReadIndexReply struct{ Index uint64 }

func (ReadIndexReply) Type() Type                   { return TypeReadIndexReply }
func (r ReadIndexReply) AppendTo(dst []byte) []byte { return appendU64(dst, r.Index) }

// DecodeReadIndexReply decodes a ReadIndexReply payload.
func DecodeReadIndexReply(b []byte) (ReadIndexReply, error) {
	d := decoder{b: b}
	r := ReadIndexReply{Index: d.u64()}
	return r, d.finish("ReadIndexReply")
}

// MemberList answers Members.
type MemberList struct{ Members []Member }

func (MemberList) Type() Type                   { return TypeMemberList }
func (m MemberList) AppendTo(dst []byte) []byte { return appendMembers(dst, m.Members) }

// DecodeMemberList decodes a MemberList payload.
func DecodeMemberList(b []byte) (MemberList, error) {
	d := decoder{b: b}
	m := MemberList{Members: d.members()}
	return m, d.finish("MemberList")
}

// AddMember adds a server to the cluster (leader only).
type AddMember struct {
	ID       string
	RaftAddr string
	Voter    bool
}

func (AddMember) Type() Type { return TypeAddMember }

func (a AddMember) AppendTo(dst []byte) []byte {
	return appendBool(appendStr(appendStr(dst, a.ID), a.RaftAddr), a.Voter)
}

// DecodeAddMember decodes an AddMember payload.
func DecodeAddMember(b []byte) (AddMember, error) {
	d := decoder{b: b}
	a := AddMember{ID: d.str(), RaftAddr: d.str(), Voter: d.u8() != 0}
	return a, d.finish("AddMember")
}

// RemoveMember removes a server from the cluster (leader only).
type RemoveMember struct{ ID string }

func (RemoveMember) Type() Type                   { return TypeRemoveMember }
func (r RemoveMember) AppendTo(dst []byte) []byte { return appendStr(dst, r.ID) }

// DecodeRemoveMember decodes a RemoveMember payload.
func DecodeRemoveMember(b []byte) (RemoveMember, error) {
	d := decoder{b: b}
	r := RemoveMember{ID: d.str()}
	return r, d.finish("RemoveMember")
}

// TransferLeader hands leadership to ID, or to any up-to-date voter if ID
// is empty (leader only).
type TransferLeader struct{ ID string }

func (TransferLeader) Type() Type                   { return TypeTransferLeader }
func (t TransferLeader) AppendTo(dst []byte) []byte { return appendStr(dst, t.ID) }

// DecodeTransferLeader decodes a TransferLeader payload.
func DecodeTransferLeader(b []byte) (TransferLeader, error) {
	d := decoder{b: b}
	t := TransferLeader{ID: d.str()}
	return t, d.finish("TransferLeader")
}

// Publish announces a node's client address to the cluster (node to
// leader), the way etcd members publish their attributes through Raft.
type Publish struct {
	ID         string
	ClientAddr string
	// Version is the command version the node understands (fsm.Version);
	// absent (0) from nodes older than versions, which means 1.
	Version uint16
}

func (Publish) Type() Type { return TypePublish }
func (p Publish) AppendTo(dst []byte) []byte {
	return appendU16(appendStr(appendStr(dst, p.ID), p.ClientAddr), p.Version)
}

// DecodePublish decodes a Publish payload.
func DecodePublish(b []byte) (Publish, error) {
	d := decoder{b: b}
	p := Publish{ID: d.str(), ClientAddr: d.str()}
	if len(d.b) > 0 {
		p.Version = d.u16()
	}
	return p, d.finish("Publish")
}
