package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"orderly/wire"
)

// Files name a process's TLS material: the CA bundle it trusts (and the
// deny-list beside it, RevokedFile, if there is one), and its own
// certificate and key.
type Files struct{ CA, Cert, Key string }

// InDir is the files of certificate NAME in a directory laid out by
// `orderctl certs` (ca.crt, NAME.crt, NAME.key).
func InDir(dir, name string) Files {
	return Files{CA: dir + "/" + CAFile, Cert: dir + "/" + name + ".crt", Key: dir + "/" + name + ".key"}
}

// recheck is how often a Source looks at its files' modification times.
const recheck = time.Second

// Source holds a process's TLS material and rebuilds it when the files
// change: it looks at their modification times at most once per recheck,
// on a handshake, so new connections use new files without a restart and
// without a goroutine; Reload forces it (SIGHUP). Connections already
// open keep the certificate they started with. A CA bundle change is
// picked up the same way (deploy/README.md, "Changing the CA").
type Source struct {
	files Files
	log   hclog.Logger

	cur atomic.Pointer[material]

	mu      sync.Mutex // one reload at a time
	checked time.Time
	stamp   [4]time.Time
}

// material is one loaded generation of the files.
type material struct {
	leaf   *x509.Certificate
	server *tls.Config
	client *tls.Config
}

// Load reads the files; it fails on a missing or unreadable file, a key
// that does not match its certificate, a certificate without an orderly
// role, or one not valid now.
func Load(f Files, log hclog.Logger) (*Source, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Source{files: f, log: log}
	m, stamp, err := s.read()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	s.stamp, s.checked = stamp, time.Now()
	return s, nil
}

// Name and Role are the process's own, from its certificate.
func (s *Source) Name() string { return s.cur.Load().leaf.Subject.CommonName }

// Role is the role of the process's own certificate.
func (s *Source) Role() wire.Role {
	r, _ := roleOf(s.cur.Load().leaf)
	return r
}

// NotAfter is when the process's own certificate expires.
func (s *Source) NotAfter() time.Time { return s.cur.Load().leaf.NotAfter }

// ServerConfig is the configuration of a listener: TLS 1.3, a client
// certificate signed by the CA required.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current().server, nil
		},
	}
}

// ClientConfig is the configuration of one dial to serverName; take a new
// one per dial so that new files are used.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	c := s.current().client.Clone()
	c.ServerName = serverName
	return c
}

// NodeClientConfig is ClientConfig for a dial that must reach a node: a
// server whose certificate has another role is refused.
func (s *Source) NodeClientConfig(serverName string) *tls.Config {
	c := s.ClientConfig(serverName)
	notRevoked := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := notRevoked(cs); err != nil {
			return err
		}
		id, err := IdentityOf(cs)
		if err != nil {
			return err
		}
		if id.Role != wire.RoleNode {
			return fmt.Errorf("%s presents a %s certificate (%q), not a node's", serverName, id.Role, id.Name)
		}
		return nil
	}
	return c
}

// MemberClientConfig is NodeClientConfig for a connection to one member:
// the certificate must also name member (its node id), so that another
// node's certificate for the same hosts cannot answer for it. An empty
// member checks the role only.
func (s *Source) MemberClientConfig(serverName, member string) *tls.Config {
	c := s.NodeClientConfig(serverName)
	if member == "" {
		return c
	}
	node := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := node(cs); err != nil {
			return err
		}
		if id, _ := IdentityOf(cs); id.Name != member {
			return fmt.Errorf("%s answers as node %q, not as member %q", serverName, id.Name, member)
		}
		return nil
	}
	return c
}

// Reload reads the files now (SIGHUP); on an error the old ones stay.
func (s *Source) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Source) current() *material {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) >= recheck {
		s.checked = time.Now()
		if st, err := s.stamps(); err == nil && st != s.stamp {
			if err := s.reloadLocked(); err != nil {
				// Half-written rotation, usually: the next check retries.
				s.log.Warn("TLS files changed but cannot be loaded; keeping the old ones", "error", err)
			}
		}
	}
	return s.cur.Load()
}

func (s *Source) reloadLocked() error {
	m, stamp, err := s.read()
	if err != nil {
		return err
	}
	old := s.cur.Swap(m)
	s.stamp = stamp
	if old == nil || !old.leaf.Equal(m.leaf) {
		s.log.Info("loaded TLS certificate", "name", m.leaf.Subject.CommonName, "serial", m.leaf.SerialNumber.Text(16),
			"not_after", m.leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

func (s *Source) stamps() ([4]time.Time, error) {
	var st [4]time.Time
	for i, p := range []string{s.files.CA, s.files.Cert, s.files.Key} {
		fi, err := os.Stat(p)
		if err != nil {
			return st, err
		}
		st[i] = fi.ModTime()
	}
	if fi, err := os.Stat(RevokedBeside(s.files.CA)); err == nil {
		st[3] = fi.ModTime() // no deny-list: the zero time
	}
	return st, nil
}

func (s *Source) read() (*material, [4]time.Time, error) {
	stamp, err := s.stamps()
	if err != nil {
		return nil, stamp, fmt.Errorf("TLS files: %w", err)
	}
	cas, err := readCerts(s.files.CA)
	if err != nil {
		return nil, stamp, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	pair, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return nil, stamp, fmt.Errorf("certificate %s with key %s: %w", s.files.Cert, s.files.Key, err)
	}
	leaf := pair.Leaf
	if _, err := roleOf(leaf); err != nil {
		return nil, stamp, fmt.Errorf("certificate %s: %w", s.files.Cert, err)
	}
	now := time.Now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, stamp, fmt.Errorf("certificate %s is valid from %s to %s, not now", s.files.Cert,
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, stamp, fmt.Errorf("certificate %s is not signed by the CA in %s: %w", s.files.Cert, s.files.CA, err)
	}
	revoked, err := readRevoked(RevokedBeside(s.files.CA))
	if err != nil {
		return nil, stamp, err
	}
	m := &material{
		leaf: leaf,
		server: &tls.Config{
			MinVersion:       tls.VersionTLS13,
			Certificates:     []tls.Certificate{pair},
			ClientAuth:       tls.RequireAndVerifyClientCert,
			ClientCAs:        pool,
			VerifyConnection: revoked.check,
		},
		client: &tls.Config{
			MinVersion:       tls.VersionTLS13,
			Certificates:     []tls.Certificate{pair},
			RootCAs:          pool,
			VerifyConnection: revoked.check,
		},
	}
	return m, stamp, nil
}

// Identity is who is at the other end of a verified TLS connection.
type Identity struct {
	Name string
	Role wire.Role
	// MaxRole is the highest client role a balancer's certificate may
	// forward (wire.AsRole); for an admin (who may act as a lesser role)
	// it is admin, for everyone else RoleNone.
	MaxRole wire.Role
}

// ErrNoIdentity means a connection carries no usable orderly certificate.
var ErrNoIdentity = errors.New("no orderly certificate")

// IdentityOf reads the peer's verified certificate.
func IdentityOf(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return Identity{}, ErrNoIdentity
	}
	leaf := cs.PeerCertificates[0]
	r, err := roleOf(leaf)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Name: leaf.Subject.CommonName, Role: r}
	switch r {
	case wire.RoleAdmin:
		id.MaxRole = wire.RoleAdmin
	case wire.RoleBalancer:
		if id.MaxRole, err = maxRoleOf(leaf); err != nil {
			return Identity{}, err
		}
	case wire.RoleNode:
		id.MaxRole = NodeMaxRole
	}
	return id, nil
}

func roleOf(c *x509.Certificate) (wire.Role, error) {
	if len(c.Subject.OrganizationalUnit) != 1 {
		return wire.RoleNone, fmt.Errorf("%w: certificate %q names %d roles, want 1", ErrNoIdentity, c.Subject.CommonName, len(c.Subject.OrganizationalUnit))
	}
	r, err := wire.ParseRole(c.Subject.OrganizationalUnit[0])
	if err != nil {
		return wire.RoleNone, fmt.Errorf("%w: certificate %q: %v", ErrNoIdentity, c.Subject.CommonName, err)
	}
	return r, nil
}

// httpProtos are the side port's ALPN protocols: HTTP/2 first.
var httpProtos = []string{"h2", "http/1.1"}

// HTTPServerConfig is the configuration of the HTTP side port: TLS 1.3
// with a client certificate verified if one is given (observe decides per
// path whether it must be).
func (s *Source) HTTPServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.current().server.Clone()
			c.ClientAuth = tls.VerifyClientCertIfGiven
			c.NextProtos = httpProtos
			return c, nil
		},
		NextProtos: httpProtos, // net/http serves HTTP/2 only if the listener's config names it
	}
}
