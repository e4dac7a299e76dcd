package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"orderly/wire"
)

// Names of the CA's files in a certificate directory; a certificate NAME
// is NAME.crt with its key in NAME.key.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// organization marks certificates made for orderly.
const organization = "orderly"

// InitCA creates a CA in dir: ca.crt and ca.key (readable by the owner
// only). It refuses to replace an existing CA: every certificate signed by
// it would stop working.
func InitCA(dir string, validFor time.Duration) error {
	if validFor <= 0 {
		return fmt.Errorf("CA validity %s: must be positive", validFor)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, f := range []string{CAFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s already exists: a new CA would invalidate every certificate it signed (see deploy/README.md, \"Changing the CA\")", filepath.Join(dir, f))
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "orderly CA", Organization: []string{organization}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", der, 0o644)
}

// Request describes a certificate to issue.
type Request struct {
	Name string    // common name; a node's certificate names its node id
	Role wire.Role // carried in the organizational unit
	// MaxRole bounds the client roles a balancer's certificate may forward
	// (wire.AsRole): reader, writer or admin; RoleNone is writer. Only for
	// RoleBalancer.
	MaxRole wire.Role
	Hosts   []string // DNS names and IP addresses it serves under
	// NotBefore and NotAfter bound its validity; NotBefore zero is five
	// minutes ago (clock skew), NotAfter zero is a year from now.
	NotBefore, NotAfter time.Time
}

// Issue signs a certificate with the CA in caDir and writes it to
// outDir/NAME.crt and its key to outDir/NAME.key. Files are replaced
// atomically, so a process reloading them never reads half a pair's file.
func Issue(caDir, outDir string, r Request) error {
	if err := r.check(); err != nil {
		return err
	}
	ca, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key for %s: %w", r.Name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	if r.NotBefore.IsZero() {
		r.NotBefore = time.Now().Add(-5 * time.Minute)
	}
	if r.NotAfter.IsZero() {
		r.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: r.Name, Organization: []string{organization},
			OrganizationalUnit: []string{r.Role.String()}},
		NotBefore:   r.NotBefore,
		NotAfter:    r.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if r.Role == wire.RoleBalancer {
		tmpl.URIs = append(tmpl.URIs, maxRoleURI(r.MaxRole))
	}
	for _, h := range r.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sign certificate for %s: %w", r.Name, err)
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", outDir, err)
	}
	// The key first: a reloader that sees the new certificate also finds
	// its key (and retries on a mismatch until both are in place).
	if err := writeKey(filepath.Join(outDir, r.Name+".key"), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(outDir, r.Name+".crt"), "CERTIFICATE", der, 0o644)
}

func (r Request) check() error {
	if r.Name == "" || strings.ContainsAny(r.Name, "/\\ \t\n") || strings.HasPrefix(r.Name, ".") {
		return fmt.Errorf("certificate name %q: want a plain name such as n1 or orderctl", r.Name)
	}
	if r.Role < wire.RoleReader || r.Role > wire.RoleBalancer {
		return fmt.Errorf("certificate for %s: no role given", r.Name)
	}
	if r.MaxRole != wire.RoleNone && (r.Role != wire.RoleBalancer || !r.MaxRole.ClientRole()) {
		return fmt.Errorf("certificate for %s: --max-role %s: only a balancer's, and reader, writer or admin", r.Name, r.MaxRole)
	}
	if (r.Role == wire.RoleNode || r.Role == wire.RoleBalancer) && len(r.Hosts) == 0 {
		return fmt.Errorf("certificate for %s (%s): a server needs --hosts, the names and addresses clients dial it by", r.Name, r.Role)
	}
	if !r.NotAfter.IsZero() && !r.NotBefore.IsZero() && !r.NotAfter.After(r.NotBefore) {
		return fmt.Errorf("certificate for %s: validity ends before it starts", r.Name)
	}
	return nil
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certs, err := readCerts(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w (is %s a CA directory made by `orderctl certs init`?)", err, dir)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, nil, fmt.Errorf("CA key %s: no PEM block", filepath.Join(dir, CAKeyFile))
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	// ca.crt may hold old and new CAs during a CA change; the key signs
	// with the one it belongs to.
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); ok && pub.Equal(&key.PublicKey) {
			return c, key, nil
		}
	}
	return nil, nil, fmt.Errorf("CA key %s matches no certificate in %s", filepath.Join(dir, CAKeyFile), filepath.Join(dir, CAFile))
}

// readCerts reads every certificate of a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate in %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return s, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

// writePEM writes a file atomically: a temporary file, fsynced, renamed.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	werr := pem.Encode(tmp, &pem.Block{Type: typ, Bytes: der})
	werr = errors.Join(werr, tmp.Chmod(mode), tmp.Sync(), tmp.Close())
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

// DevClients are the client certificates EnsureDev makes, one per role a
// person has; "orderctl" is the admin that orderctl presents by default.
var DevClients = []struct {
	Name string
	Role wire.Role
}{{"orderctl", wire.RoleAdmin}, {"writer", wire.RoleWriter}, {"reader", wire.RoleReader}}

// EnsureDev makes what a development cluster needs in dir, keeping what
// is there: a CA, a node certificate per node id, "orderlb" for the
// balancer (all serving hosts), and DevClients. make run calls it on every
// start, so the first start makes them and later ones reuse them.
func EnsureDev(dir string, nodes, hosts []string) error {
	if _, err := os.Stat(filepath.Join(dir, CAFile)); errors.Is(err, os.ErrNotExist) {
		if err := InitCA(dir, 10*365*24*time.Hour); err != nil {
			return err
		}
	}
	want := []Request{{Name: "orderlb", Role: wire.RoleBalancer, Hosts: hosts}}
	for _, n := range nodes {
		want = append(want, Request{Name: n, Role: wire.RoleNode, Hosts: hosts})
	}
	for _, c := range DevClients {
		want = append(want, Request{Name: c.Name, Role: c.Role})
	}
	for _, r := range want {
		if _, err := os.Stat(filepath.Join(dir, r.Name+".crt")); err == nil {
			continue
		}
		if err := Issue(dir, dir, r); err != nil {
			return err
		}
	}
	return nil
}
