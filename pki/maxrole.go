package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"orderly/wire"
)

// A balancer's certificate carries the highest client role it may forward
// (wire.AsRole) as a URI subject alternative name, urn:orderly:max-role:R,
// the way SPIFFE carries an identity: a standard field, signed by the CA
// with the rest of the certificate.
const maxRoleURN = "urn:orderly:max-role:"

// DefaultBalancerMaxRole is what a balancer's certificate without the
// name may forward: orders and reads, no admin calls. One stolen balancer
// certificate must not be the whole cluster.
const DefaultBalancerMaxRole = wire.RoleWriter

// NodeMaxRole is what a node's certificate may forward: the orders of its
// HTTP API's clients (raftnode.Node.ServeAPI), never an admin call.
const NodeMaxRole = wire.RoleWriter

func maxRoleURI(r wire.Role) *url.URL {
	if r == wire.RoleNone {
		r = DefaultBalancerMaxRole
	}
	return &url.URL{Scheme: "urn", Opaque: strings.TrimPrefix(maxRoleURN, "urn:") + r.String()}
}

// maxRoleOf reads a balancer certificate's bound; without one,
// DefaultBalancerMaxRole. Two are refused: a certificate says one thing.
func maxRoleOf(c *x509.Certificate) (wire.Role, error) {
	found := wire.RoleNone
	for _, u := range c.URIs {
		s, ok := strings.CutPrefix(u.String(), maxRoleURN)
		if !ok {
			continue
		}
		r, err := wire.ParseRole(s)
		if err != nil || !r.ClientRole() || found != wire.RoleNone {
			return wire.RoleNone, fmt.Errorf("%w: certificate %q: max role %q: want one of reader, writer or admin", ErrNoIdentity, c.Subject.CommonName, s)
		}
		found = r
	}
	if found == wire.RoleNone {
		return DefaultBalancerMaxRole, nil
	}
	return found, nil
}
