package serve

import (
	"strings"
	"testing"

	"orderly/wire"
)

// TestPermitCapsForwardedRoles: a balancer forwards with its client's
// role, capped at its certificate's MaxRole; an admin's order through a
// writer-bound balancer goes through as a writer's, its admin calls do
// not, and no balancer forwards as a node.
func TestPermitCapsForwardedRoles(t *testing.T) {
	lb := func(max wire.Role) Caller { return Caller{Name: "orderlb", Role: wire.RoleBalancer, MaxRole: max} }
	order := wire.Order{CustomerID: 1, OrderNumber: 1, ClientID: 1, Seq: 1}
	cases := []struct {
		from    Caller
		req     wire.Message
		allowed bool
		role    wire.Role // the role it runs with
		says    string    // in the refusal
	}{
		{lb(wire.RoleWriter), wire.AsRole{Role: wire.RoleAdmin, Msg: order}, true, wire.RoleWriter, ""},
		{lb(wire.RoleWriter), wire.AsRole{Role: wire.RoleReader, Msg: order}, false, wire.RoleReader, "needs role writer"},
		{lb(wire.RoleWriter), wire.AsRole{Role: wire.RoleAdmin, Msg: wire.TransferLeader{}}, false, wire.RoleWriter, "forwards role writer at most"},
		{lb(wire.RoleAdmin), wire.AsRole{Role: wire.RoleAdmin, Msg: wire.TransferLeader{}}, true, wire.RoleAdmin, ""},
		{lb(wire.RoleAdmin), wire.AsRole{Role: wire.RoleNode, Msg: wire.Publish{ID: "n1"}}, false, wire.RoleBalancer, "clients only"},
		{Caller{Name: "w", Role: wire.RoleWriter}, wire.AsRole{Role: wire.RoleAdmin, Msg: wire.TransferLeader{}}, false, wire.RoleWriter, "needs role"},
	}
	for _, tc := range cases {
		got, _, err := Permit(tc.from, tc.req, true)
		if (err == nil) != tc.allowed || (err == nil && got.Role != tc.role) {
			t.Errorf("%s (max %s) sending %+v: role %s, %v; want allowed %v as %s", tc.from.Role, tc.from.MaxRole, tc.req, got.Role, err, tc.allowed, tc.role)
		}
		if err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v: refusal %q does not say %q", tc.req, err, tc.says)
		}
	}
}
