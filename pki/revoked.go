package pki

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RevokedFile is the deny-list of certificate serial numbers, beside the
// CA bundle (ca.crt): one serial in hex per line, then optionally the
// certificate's name and when it was revoked; # starts a comment. Every
// process refuses a peer whose certificate is listed, on every port and
// as a client, from the moment it sees the file change (within a second,
// on its next handshake; connections already open are not cut).
//
// Why a deny-list and not short-lived certificates: it takes effect at
// once, needs no renewal service that every process depends on (a cert
// that failed to renew would stop a node), and is a file an operator
// copies with the CA bundle. Its cost is that it is distributed by hand
// and grows; re-issuing from a new CA (deploy/README.md) empties it.
const RevokedFile = "revoked"

// RevokedBeside is the deny-list path for a CA bundle at caPath.
func RevokedBeside(caPath string) string { return filepath.Join(filepath.Dir(caPath), RevokedFile) }

// revokedSet is a loaded deny-list.
type revokedSet map[string]bool // serial in lowercase hex

func readRevoked(path string) (revokedSet, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deny-list: %w", err)
	}
	defer f.Close()
	set := revokedSet{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		serial, ok := new(big.Int).SetString(fields[0], 16)
		if !ok {
			return nil, fmt.Errorf("deny-list %s line %d: %q is not a serial number in hex", path, line, fields[0])
		}
		set[serial.Text(16)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("deny-list %s: %w", path, err)
	}
	return set, nil
}

// check is a tls.Config.VerifyConnection: a listed peer certificate is
// refused (the handshake fails with a TLS alert).
func (r revokedSet) check(cs tls.ConnectionState) error {
	if len(r) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	if r[leaf.SerialNumber.Text(16)] {
		return fmt.Errorf("certificate %q (serial %s) is revoked", leaf.Subject.CommonName, leaf.SerialNumber.Text(16))
	}
	return nil
}

// Revoke adds the certificate at certPath to the deny-list beside the CA
// in caDir.
func Revoke(caDir, certPath string) (serial string, err error) {
	certs, err := readCerts(certPath)
	if err != nil {
		return "", err
	}
	if len(certs) == 0 {
		return "", fmt.Errorf("%s holds no certificate", certPath)
	}
	c := certs[0]
	path := filepath.Join(caDir, RevokedFile)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("deny-list: %w", err)
	}
	line := fmt.Sprintf("%s %s %s\n", c.SerialNumber.Text(16), c.Subject.CommonName, time.Now().UTC().Format(time.RFC3339))
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return "", fmt.Errorf("deny-list %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("deny-list %s: %w", path, err)
	}
	return c.SerialNumber.Text(16), f.Close()
}
