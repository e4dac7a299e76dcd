package harness

import (
	"crypto/tls"
	"fmt"
	"sync"

	"orderly/pki"
)

// Certs is a CA and the certificates of test clusters, in Dir: node
// certificates n1..n9, "orderlb" for balancers, and a client per role
// (pki.DevClients: "orderctl" is the admin). Clusters started with it run
// mutual TLS, as production does.
type Certs struct {
	Dir string

	mu   sync.Mutex
	srcs map[string]*pki.Source
}

// MaxNodeCert is the highest node number NewCerts makes a certificate for.
const MaxNodeCert = 9

// NewCerts makes (or keeps) the certificates in dir; hosts are the
// addresses servers are dialed by.
func NewCerts(dir string, hosts ...string) (*Certs, error) {
	var nodes []string
	for i := 1; i <= MaxNodeCert; i++ {
		nodes = append(nodes, fmt.Sprintf("n%d", i))
	}
	if err := pki.EnsureDev(dir, nodes, append(hosts, "localhost")); err != nil {
		return nil, fmt.Errorf("test certificates: %w", err)
	}
	return &Certs{Dir: dir, srcs: map[string]*pki.Source{}}, nil
}

// Flags are the TLS flags of a process presenting certificate name; with
// no Certs, --insecure.
func (c *Certs) Flags(name string) []string {
	if c == nil {
		return []string{"--insecure"}
	}
	f := pki.InDir(c.Dir, name)
	return []string{"--ca", f.CA, "--cert", f.Cert, "--key", f.Key}
}

// Client is what client.Options.TLS and wire.DialOptions.TLS want for a
// client presenting certificate name; nil (plaintext) with no Certs.
func (c *Certs) Client(name string) (func(string) *tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	src := c.srcs[name]
	if src == nil {
		var err error
		if src, err = pki.Load(pki.InDir(c.Dir, name), nil); err != nil {
			return nil, err
		}
		c.srcs[name] = src
	}
	return src.ClientConfig, nil
}

// Admin is Client("orderctl"), whose certificates NewCerts always makes.
func (c *Certs) Admin() func(string) *tls.Config {
	f, err := c.Client("orderctl")
	if err != nil {
		return func(string) *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS13} } // fails the handshake, saying why
	}
	return f
}

// CLIFlags are orderctl's flags to present certificate name.
func (c *Certs) CLIFlags(name string) []string {
	if c == nil {
		return []string{"--insecure"}
	}
	return []string{"--certs", c.Dir, "--as", name}
}
