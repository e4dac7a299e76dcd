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

// permit decides whether from may send req. A request forwarded by a
// balancer (wire.AsRole) runs with its client's role, never with more:
// the caller becomes that role and req the inner request. Without check
// (a plaintext port, --insecure) it only unwraps.
func permit(from Caller, req wire.Message, check bool) (Caller, wire.Message, error) {
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
		from.Role, req = ar.Role, ar.Msg
		if !from.Role.Allows(req.Type()) {
			return from, req, denied(from.Role, req.Type())
		}
	}
	return from, req, nil
}

func denied(r wire.Role, t wire.Type) error {
	if wire.Needs(t) == "no role" {
		return wire.Errorf(wire.CodeBadRequest, "%s is not a request", t)
	}
	return wire.Errorf(wire.CodePermissionDenied, "%s needs %s; this client has role %s", t, wire.Needs(t), r)
}
