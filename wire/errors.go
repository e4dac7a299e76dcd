package wire

import (
	"errors"
	"fmt"
)

// Code classifies an Error. Whether a failed write may have been applied
// depends on it: see Code.Unknown.
type Code uint8

// Error codes. Values are part of the protocol: never renumber.
const (
	CodeBadRequest       Code = 1  // the request is malformed or invalid; not applied
	CodeNotLeader        Code = 2  // this node does not lead; LeaderAddr names who does; not applied
	CodeUnavailable      Code = 3  // no leader or node shutting down; not applied
	CodeTimeout          Code = 4  // outcome unknown: retry with the same (client_id, seq)
	CodeOverloaded       Code = 5  // too much work queued; not applied
	CodeSessionExpired   Code = 6  // the client's session is gone; the write's fate cannot be told
	CodeStaleSeq         Code = 7  // seq is below the client's last applied seq; not applied now
	CodeInternal         Code = 8  // a bug or a storage failure on the node
	CodePermissionDenied Code = 9  // the client's role may not send this request; not applied
	CodeNoSpace          Code = 10 // a member's disk is (nearly) full: no new orders until it has room; not applied
	CodeWrongShard       Code = 11 // this node holds no replica of the request's shard; Epoch is its map's; not applied
)

var codeNames = map[Code]string{
	CodeBadRequest: "BadRequest", CodeNotLeader: "NotLeader", CodeUnavailable: "Unavailable",
	CodeTimeout: "Timeout", CodeOverloaded: "Overloaded", CodeSessionExpired: "SessionExpired",
	CodeStaleSeq: "StaleSeq", CodeInternal: "Internal", CodePermissionDenied: "PermissionDenied",
	CodeNoSpace: "NoSpace", CodeWrongShard: "WrongShard",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Code(%d)", uint8(c))
}

// Unknown reports whether a write that failed with this code may still have
// been applied (or may yet be). Such a write is retried only with the same
// (client_id, seq), never as a new write.
func (c Code) Unknown() bool {
	return c == CodeTimeout || c == CodeSessionExpired || c == CodeInternal
}

// Error is the Error message: a request failed. It is also a Go error.
type Error struct {
	Code       Code
	Message    string
	LeaderAddr string // with CodeNotLeader: the leader's client address, if known
	// Epoch, with CodeWrongShard only (and only then on the wire): the
	// epoch of the shard as the answering node knows it; a client whose
	// map is older refreshes it.
	Epoch uint64
}

func (e *Error) Error() string {
	if e.LeaderAddr != "" {
		return fmt.Sprintf("%s: %s (leader at %s)", e.Code, e.Message, e.LeaderAddr)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (*Error) Type() Type { return TypeError }

func (e *Error) AppendTo(dst []byte) []byte {
	dst = append(dst, uint8(e.Code))
	dst = appendStr(dst, e.Message)
	dst = appendStr(dst, e.LeaderAddr)
	if e.Code == CodeWrongShard {
		dst = appendU64(dst, e.Epoch)
	}
	return dst
}

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DecodeError decodes an Error payload.
func DecodeError(b []byte) (*Error, error) {
	d := decoder{b: b}
	e := &Error{Code: Code(d.u8()), Message: d.str(), LeaderAddr: d.str()}
	if e.Code == CodeWrongShard {
		e.Epoch = d.u64()
	}
	return e, d.finish("Error")
}

// CodeOf returns the Code of an *Error in err's chain, and false if there is none.
func CodeOf(err error) (Code, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// Reply is the answer to a request that produced resp or err: resp, the
// *Error inside err, or an Internal error saying what err was.
func Reply(resp Message, err error) Message {
	if err == nil {
		return resp
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Errorf(CodeInternal, "%v", err)
}

// Decode decodes the payload of a message of type t.
func Decode(t Type, b []byte) (Message, error) {
	switch t {
	case TypeOrder:
		return DecodeOrder(b)
	case TypeLaptopInfo:
		return DecodeLaptopInfo(b)
	case TypeGet:
		return DecodeGet(b)
	case TypeRecord:
		return DecodeRecord(b)
	case TypeScan:
		return DecodeScan(b)
	case TypeRecords:
		return DecodeRecords(b)
	case TypeStatus:
		return Status{}, decodeEmpty(b, "Status")
	case TypeStatusInfo:
		return DecodeStatusInfo(b)
	case TypeReadIndex:
		return ReadIndex{}, decodeEmpty(b, "ReadIndex")
	case TypeReadIndexReply:
		return DecodeReadIndexReply(b)
	case TypeMembers:
		return Members{}, decodeEmpty(b, "Members")
	case TypeMemberList:
		return DecodeMemberList(b)
	case TypeAddMember:
		return DecodeAddMember(b)
	case TypeRemoveMember:
		return DecodeRemoveMember(b)
	case TypeTransferLeader:
		return DecodeTransferLeader(b)
	case TypeOK:
		return OK{}, decodeEmpty(b, "OK")
	case TypePublish:
		return DecodePublish(b)
	case TypeError:
		return DecodeError(b)
	case TypeAsRole:
		return DecodeAsRole(b)
	case TypeAlarms:
		return Alarms{}, decodeEmpty(b, "Alarms")
	case TypeAlarmList:
		return DecodeAlarmList(b)
	case TypeReportAlarms:
		return DecodeReportAlarms(b)
	case TypeBackup:
		return DecodeBackup(b)
	case TypeBackupChunk:
		return DecodeBackupChunk(b)
	case TypeWatch:
		return DecodeWatch(b)
	case TypeEvents:
		return DecodeEvents(b)
	case TypeCompacted:
		return DecodeCompacted(b)
	case TypeShardReadIndex:
		return DecodeShardReadIndex(b)
	case TypeShards:
		return Shards{}, decodeEmpty(b, "Shards")
	case TypeShardMap:
		return DecodeShardMap(b)
	case TypePublishShard:
		return DecodePublishShard(b)
	case TypeShardStatus:
		return DecodeShardStatus(b)
	case TypeShardMember:
		return DecodeShardMember(b)
	case TypeShardScan:
		return DecodeShardScan(b)
	}
	return nil, fmt.Errorf("decode: %w %d", ErrUnknownType, uint8(t))
}

// ErrUnknownType means a frame's type byte names no message.
var ErrUnknownType = errors.New("wire: unknown message type")
