package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"orderly/pki"
	"orderly/wire"
)

// TLSHandshake runs the server side of a mutual TLS handshake on c within
// timeout and returns the verified client's identity. A client without a
// certificate from the CA, with an expired one, or with one that names no
// orderly role is refused here.
func TLSHandshake(c net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, pki.Identity, error) {
	tc := tls.Server(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, pki.Identity{}, fmt.Errorf("TLS handshake: %w", err)
	}
	id, err := pki.IdentityOf(tc.ConnectionState())
	if err != nil {
		return nil, pki.Identity{}, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, id, nil
}

// Permit decides whether from may send req (the binary port and the
// HTTP API check with it alike). A request forwarded by a
// balancer (wire.AsRole) runs with its client's role, never with more,
// and at most the role the balancer's certificate may forward (its
// MaxRole: writer unless the operator issued it more; an admin's orders
// go through, its admin calls do not): the caller becomes that role and
// req the inner request. Without check
// (a plaintext port, --insecure) it only unwraps.
func Permit(from Caller, req wire.Message, check bool) (Caller, wire.Message, error) {
	if !check {
		if ar, ok := req.(wire.AsRole); ok {
			from.Role, req = ar.Role, ar.Msg
		}
		return from, req, nil
	}
	if !from.Role.Allows(req.Type()) {
		return from, req, denied(from.Role, req.Type())
	}
	if ar, ok := req.(wire.AsRole); ok {
		if !ar.Role.ClientRole() {
			return from, req, wire.Errorf(wire.CodePermissionDenied, "%s %q may act for clients only, not as %s", from.Role, from.Name, ar.Role)
		}
		capped := min(ar.Role, from.MaxRole)
		from.Forwarder, from.Role, req = from.Role, capped, ar.Msg
		if !from.Role.Allows(req.Type()) {
			err := denied(from.Role, req.Type())
			if capped < ar.Role {
				err.Message += fmt.Sprintf(" (a %s client through %s %q, whose certificate forwards role %s at most)", ar.Role, wire.RoleBalancer, from.Name, from.MaxRole)
			}
			return from, req, err
		}
	}
	return from, req, nil
}

func denied(r wire.Role, t wire.Type) *wire.Error {
	if wire.Needs(t) == "no role" {
		return wire.Errorf(wire.CodeBadRequest, "%s is not a request", t)
	}
	return wire.Errorf(wire.CodePermissionDenied, "%s needs %s; this client has role %s", t, wire.Needs(t), r)
}
