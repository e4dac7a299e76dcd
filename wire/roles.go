package wire

import (
	"fmt"
	"strings"
)

// Role is what a client may do (DESIGN §7a). It travels in a client
// certificate and, from a balancer, with each request it forwards (AsRole).
// Values are part of the protocol: never renumber.
type Role uint8

const (
	RoleNone     Role = 0
	RoleReader   Role = 1 // get, scan, status, members list, watch
	RoleWriter   Role = 2 // reader + orders
	RoleAdmin    Role = 3 // writer + membership and leadership changes
	RoleNode     Role = 4 // reader + ReadIndex, Publish (of its own id) and AsRole (orders) for peers
	RoleBalancer Role = 5 // reader + ReadIndex + AsRole: forwards its client's role
)

var roleNames = [...]string{RoleNone: "none", RoleReader: "reader", RoleWriter: "writer",
	RoleAdmin: "admin", RoleNode: "node", RoleBalancer: "balancer"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if r != int(RoleNone) && n == s {
			return Role(r), nil
		}
	}
	return RoleNone, fmt.Errorf("unknown role %q: want one of %s", s, strings.Join(roleNames[1:], ", "))
}

// ClientRole reports whether a balancer may forward requests with r:
// the roles of people, not of cluster members.
func (r Role) ClientRole() bool { return r == RoleReader || r == RoleWriter || r == RoleAdmin }

// Allows reports whether role r may send a request of type t.
func (r Role) Allows(t Type) bool {
	switch t {
	case TypeGet, TypeScan, TypeStatus, TypeMembers, TypeAlarms, TypeWatch, TypeShards, TypeShardStatus:
		return r != RoleNone
	case TypeOrder:
		return r == RoleWriter || r == RoleAdmin
	case TypeAddMember, TypeRemoveMember, TypeTransferLeader, TypeBackup, TypeShardMember:
		return r == RoleAdmin
	case TypeShardScan:
		// A node reads a page of a shard it does not hold for a client
		// whose Scan it serves (that client's role allowed the Scan).
		return r == RoleNode
	case TypeReadIndex, TypeShardReadIndex:
		// A balancer answers linearizable reads from its cache behind
		// the leader's read index (lb/linearizable.go).
		return r == RoleNode || r == RoleBalancer
	case TypePublish, TypeReportAlarms, TypePublishShard:
		return r == RoleNode
	case TypeAsRole:
		// A node forwards its HTTP API's orders to the leader
		// (raftnode.Node.ServeAPI); its certificate caps them at writer.
		return r == RoleBalancer || r == RoleAdmin || r == RoleNode
	}
	return false
}

// Needs names the roles that may send a request of type t, for
// PermissionDenied messages.
func Needs(t Type) string {
	var may []string
	for r := RoleReader; r <= RoleBalancer; r++ {
		if r.Allows(t) {
			may = append(may, r.String())
		}
	}
	if len(may) == 0 {
		return "no role"
	}
	return "role " + strings.Join(may, " or ")
}

// AsRole is a request a balancer forwards on behalf of its client: the
// node serves Msg with Role, the client's, never with the balancer's own.
type AsRole struct {
	Role Role
	Msg  Message
}

func (AsRole) Type() Type { return TypeAsRole }

func (a AsRole) AppendTo(dst []byte) []byte {
	dst = append(dst, uint8(a.Role), uint8(a.Msg.Type()))
	return a.Msg.AppendTo(dst)
}

// DecodeAsRole decodes an AsRole payload; the inner request may not be
// another AsRole.
func DecodeAsRole(b []byte) (AsRole, error) {
	if len(b) < 2 {
		return AsRole{}, fmt.Errorf("decode AsRole: %w", ErrShortPayload)
	}
	r, t := Role(b[0]), Type(b[1])
	if !r.ClientRole() {
		return AsRole{}, fmt.Errorf("decode AsRole: role %s cannot be forwarded", r)
	}
	if t == TypeAsRole {
		return AsRole{}, fmt.Errorf("decode AsRole: nested AsRole")
	}
	m, err := Decode(t, b[2:])
	if err != nil {
		return AsRole{}, fmt.Errorf("decode AsRole: %w", err)
	}
	return AsRole{Role: r, Msg: m}, nil
}
