package wire

import (
	"errors"
	"reflect"
	"testing"
)

// samples holds one non-trivial value of every message type; the round-trip
// test and the fuzz seed corpus both start from it.
func samples() []Message {
	members := []Member{
		{ID: "n1", RaftAddr: "127.0.0.1:7001", ClientAddr: "127.0.0.1:6001", Voter: true},
		{ID: "n2", RaftAddr: "127.0.0.1:7002", Voter: false},
	}
	return []Message{
		Order{CustomerID: 7, OrderNumber: 42, LaptopType: Custom, ClientID: 99, Seq: 3},
		LaptopInfo{CustomerID: 7, OrderNumber: 42, LaptopType: Custom, EngineerID: 5, ExpertID: -1, Index: 1 << 40},
		Get{CustomerID: 2147483647, Consistency: Session, MinIndex: 17},
		Record{CustomerRecord: CustomerRecord{CustomerID: 1, LastOrder: NoOrder, LastLaptopType: -1}, ReadIndex: 9},
		Scan{From: 10, Limit: 100, Consistency: Stale, MinIndex: 1},
		Records{ReadIndex: 5, Next: -1, Records: []CustomerRecord{
			{CustomerID: 1, LastOrder: 3, OrderCount: 4, LastLaptopType: 1, LastIndex: 8},
			{CustomerID: 2, LastOrder: NoOrder, LastLaptopType: -1}}},
		Status{},
		StatusInfo{ID: "n1", Role: "leader", LeaderID: "n1", LeaderAddr: "127.0.0.1:6001", Term: 3,
			CommitIndex: 10, AppliedIndex: 9, LastIndex: 11, Members: members,
			Stats: []Stat{{Name: "cache_hits", Value: 12}}},
		ReadIndex{},
		ReadIndexReply{Index: 77},
		Members{},
		MemberList{Members: members},
		AddMember{ID: "n4", RaftAddr: "127.0.0.1:7004", Voter: true},
		RemoveMember{ID: "n4"},
		TransferLeader{ID: ""},
		OK{},
		Publish{ID: "n2", ClientAddr: "127.0.0.1:6002"},
		&Error{Code: CodeNotLeader, Message: "not the leader", LeaderAddr: "127.0.0.1:6002"},
		AsRole{Role: RoleReader, Msg: Get{CustomerID: 3, Consistency: Linearizable}},
		AsRole{Role: RoleWriter, Msg: Order{CustomerID: 7, OrderNumber: 1, ClientID: 5, Seq: 1}},
		Alarms{},
		AlarmList{Alarms: []Alarm{{Member: "n2", Kind: AlarmNoSpace, Message: "12 MiB free < --min-free 256 MiB", Since: 1 << 60}}},
		AlarmList{},
		ReportAlarms{ID: "n3", Alarms: []Alarm{{Member: "n3", Kind: AlarmNoSpace, Message: "write: no space left on device", Since: 5}}},
		ReportAlarms{ID: "n1"},
		Backup{},
		Backup{Token: 1 << 63, Offset: 262144},
		Backup{Token: 3, Offset: 9, PerShard: true, Shard: 2},
		BackupChunk{Token: 5, Index: 1000, Term: 3, Size: 9, Offset: 0, Data: []byte("snapshot!"), Members: members},
		BackupChunk{Token: 5, Index: 1000, Term: 3, Size: 9, Offset: 9, SHA256: make([]byte, 32), Last: true},
		Watch{From: 0, Customer: WatchAll},
		Watch{From: 1 << 40, Customer: 7},
		Watch{From: 9, Customer: WatchAll, PerShard: true, Shard: 0},
		Watch{From: 0, Customer: WatchAll, PerShard: true, Shard: 255},
		Events{Through: 12},
		Events{Through: 99, Events: []Event{{Index: 98, CustomerID: 7, OrderNumber: 3, LaptopType: Custom, EngineerID: 2, ExpertID: 1, OrderCount: 3},
			{Index: 99, CustomerID: 1 << 30, OrderNumber: -5, EngineerID: 4, ExpertID: -1, OrderCount: 1}}},
		Compacted{Oldest: 501, Message: "from index 3: the node holds orders from index 501"},
		AsRole{Role: RoleReader, Msg: Watch{From: 5, Customer: WatchAll}},
		ShardReadIndex{Shard: 3},
		Shards{},
		ShardMap{Shards: []ShardInfo{
			{ID: 0, SlotLo: 0, SlotHi: 5461, Epoch: 1, Leader: "n1", LeaderAddr: "127.0.0.1:6001",
				Replicas: []Replica{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n4"}}},
			{ID: 1, SlotLo: 5461, SlotHi: 16384, Epoch: 9}}},
		ShardMap{},
		&Error{Code: CodeWrongShard, Message: "node n2 holds no replica of shard 4", Epoch: 12},
		PublishShard{Shard: ShardInfo{ID: 2, SlotLo: 10922, SlotHi: 16384, Epoch: 7, Leader: "n3",
			Replicas: []Replica{{ID: "n3", Voter: true}, {ID: "n1", Voter: true}}}, Term: 4},
		ShardStatus{Shard: 5},
		ShardMember{Shard: 1, Op: ShardAddNonvoter, ID: "n4", RaftAddr: "127.0.0.1:7004"},
		ShardMember{Shard: 2, Op: ShardRemove, ID: "n1"},
		ShardScan{Shard: 1, Scan: Scan{From: 100, Limit: 7, Consistency: Linearizable}},
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range samples() {
		t.Run(m.Type().String(), func(t *testing.T) {
			got, err := Decode(m.Type(), m.AppendTo(nil))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip: got %#v, want %#v", got, m)
			}
		})
	}
}

// optionalTail says whether m may end with an optional field (a shard
// id), which a byte more starts.
func optionalTail(m Message) bool {
	switch r := m.(type) {
	case Watch:
		return !r.PerShard
	case Backup:
		return !r.PerShard
	case AsRole:
		return optionalTail(r.Msg)
	}
	return false
}

func TestDecodeRejectsBadPayloads(t *testing.T) {
	for _, m := range samples() {
		b := m.AppendTo(nil)
		if len(b) > 0 {
			if _, err := Decode(m.Type(), b[:len(b)-1]); !errors.Is(err, ErrShortPayload) {
				t.Errorf("%s cut short: got %v, want ErrShortPayload", m.Type(), err)
			}
		}
		_, err := Decode(m.Type(), append(b, 0))
		if optionalTail(m) { // one byte more is a shard id cut short
			if err == nil {
				t.Errorf("%s with a trailing byte: accepted", m.Type())
			}
		} else if !errors.Is(err, ErrTrailingBytes) {
			t.Errorf("%s with a trailing byte: got %v, want ErrTrailingBytes", m.Type(), err)
		}
	}
	if _, err := Decode(Type(200), nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: got %v", err)
	}
	// A Records count of 2^32-1 with no records must fail before allocating.
	huge := Records{}.AppendTo(nil)
	huge[12], huge[13], huge[14], huge[15] = 0xff, 0xff, 0xff, 0xff
	if _, err := DecodeRecords(huge); !errors.Is(err, ErrShortPayload) {
		t.Errorf("huge record count: got %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := Order{CustomerID: 1, OrderNumber: 1, ClientID: 1, Seq: 1}
	cases := []struct {
		name string
		err  error
	}{
		{"good order", good.Validate()},
		{"good get", Get{CustomerID: 0}.Validate()},
		{"good scan", Scan{Limit: 1}.Validate()},
		{"watch of a shard", Watch{Customer: WatchAll, PerShard: true, Shard: 3}.Validate()},
	}
	for _, c := range cases {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{"negative customer", Order{CustomerID: -1, ClientID: 1, Seq: 1}.Validate()},
		{"negative number", Order{OrderNumber: -5, ClientID: 1, Seq: 1}.Validate()},
		{"laptop type 9", Order{LaptopType: 9, ClientID: 1, Seq: 1}.Validate()},
		{"client 0", Order{Seq: 1}.Validate()},
		{"seq 0", Order{ClientID: 1}.Validate()},
		{"get negative", Get{CustomerID: -3}.Validate()},
		{"get consistency", Get{Consistency: 7}.Validate()},
		{"scan limit 0", Scan{}.Validate()},
		{"scan limit huge", Scan{Limit: MaxScanLimit + 1}.Validate()},
		{"scan negative", Scan{From: -1, Limit: 1}.Validate()},
		{"watch of one customer in a shard", Watch{Customer: 7, PerShard: true, Shard: 1}.Validate()},
		{"watch customer -2", Watch{Customer: -2}.Validate()},
	}
	for _, c := range bad {
		if c.err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestRoles(t *testing.T) {
	cases := []struct {
		role Role
		t    Type
		ok   bool
	}{
		{RoleReader, TypeGet, true}, {RoleReader, TypeOrder, false}, {RoleWriter, TypeOrder, true},
		{RoleWriter, TypeRemoveMember, false}, {RoleAdmin, TypeRemoveMember, true},
		{RoleAdmin, TypePublish, false}, {RoleNode, TypePublish, true}, {RoleNode, TypeOrder, false},
		{RoleBalancer, TypeOrder, false}, {RoleBalancer, TypeAsRole, true}, {RoleWriter, TypeAsRole, false},
		{RoleNone, TypeGet, false}, {RoleAdmin, TypeLaptopInfo, false},
		{RoleReader, TypeAlarms, true}, {RoleNone, TypeAlarms, false},
		{RoleNode, TypeReportAlarms, true}, {RoleAdmin, TypeReportAlarms, false}, {RoleWriter, TypeReportAlarms, false},
		{RoleBalancer, TypeReportAlarms, false},
		{RoleAdmin, TypeBackup, true}, {RoleWriter, TypeBackup, false}, {RoleReader, TypeBackup, false},
		{RoleNode, TypeBackup, false}, {RoleBalancer, TypeBackup, false}, {RoleAdmin, TypeBackupChunk, false},
		{RoleReader, TypeWatch, true}, {RoleNode, TypeWatch, true}, {RoleBalancer, TypeWatch, true}, {RoleNone, TypeWatch, false},
		{RoleAdmin, TypeEvents, false}, {RoleAdmin, TypeCompacted, false},
		{RoleBalancer, TypeReadIndex, true}, {RoleReader, TypeReadIndex, false}, {RoleAdmin, TypeReadIndex, false},
		{RoleReader, TypeShards, true}, {RoleNone, TypeShards, false}, {RoleReader, TypeShardStatus, true},
		{RoleAdmin, TypeShardMember, true}, {RoleWriter, TypeShardMember, false}, {RoleNode, TypeShardMember, false},
		{RoleNode, TypeShardScan, true}, {RoleAdmin, TypeShardScan, false}, {RoleBalancer, TypeShardScan, false},
		{RoleNode, TypePublishShard, true}, {RoleAdmin, TypePublishShard, false},
		{RoleNode, TypeShardReadIndex, true}, {RoleReader, TypeShardReadIndex, false},
	}
	for _, c := range cases {
		if got := c.role.Allows(c.t); got != c.ok {
			t.Errorf("%s may send %s: got %v, want %v", c.role, c.t, got, c.ok)
		}
	}
	if got := Needs(TypeOrder); got != "role writer or admin" {
		t.Errorf("Needs(Order) = %q", got)
	}
	for _, r := range []Role{RoleReader, RoleWriter, RoleAdmin, RoleNode, RoleBalancer} {
		if p, err := ParseRole(r.String()); err != nil || p != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, p, err)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("ParseRole(root) accepted")
	}
	for _, bad := range [][]byte{{byte(RoleNode), byte(TypeGet), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {byte(RoleReader), byte(TypeAsRole), byte(RoleReader), byte(TypeStatus)}} {
		if _, err := DecodeAsRole(bad); err == nil {
			t.Errorf("DecodeAsRole(%x) accepted", bad)
		}
	}
}
