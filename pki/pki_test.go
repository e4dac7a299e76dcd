package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/wire"
)

func mustDev(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := EnsureDev(dir, []string{"n1", "n2"}, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIssueAndLoad(t *testing.T) {
	dir := mustDev(t)
	src, err := Load(InDir(dir, "n1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != "n1" || src.Role() != wire.RoleNode {
		t.Fatalf("n1's certificate: name %q role %s", src.Name(), src.Role())
	}
	for _, c := range DevClients {
		s, err := Load(InDir(dir, c.Name), nil)
		if err != nil || s.Role() != c.Role {
			t.Fatalf("%s: role %v, %v; want %s", c.Name, s.Role(), err, c.Role)
		}
	}
	// Again: nothing is replaced.
	before, _ := os.ReadFile(filepath.Join(dir, "n1.crt"))
	if err := EnsureDev(dir, []string{"n1", "n2"}, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "n1.crt")); string(after) != string(before) {
		t.Fatal("EnsureDev replaced an existing certificate")
	}
	if err := InitCA(dir, time.Hour); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a second CA over the first: %v", err)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := mustDev(t)
	other := mustDev(t)
	past := time.Now().Add(-48 * time.Hour)
	if err := Issue(dir, dir, Request{Name: "old", Role: wire.RoleAdmin, NotBefore: past, NotAfter: past.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		files Files
		want  string
	}{
		{"expired", InDir(dir, "old"), "not now"},
		{"another CA", Files{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(other, "n1.crt"), Key: filepath.Join(other, "n1.key")}, "not signed by the CA"},
		{"key of another certificate", Files{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, "n1.crt"), Key: filepath.Join(dir, "n2.key")}, "private key does not match"},
		{"missing", InDir(dir, "nobody"), "no such file"},
	}
	for _, c := range cases {
		if _, err := Load(c.files, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load = %v, want an error with %q", c.name, err, c.want)
		}
	}
	for _, bad := range []Request{{Name: "", Role: wire.RoleAdmin}, {Name: "../x", Role: wire.RoleAdmin},
		{Name: "n9", Role: wire.RoleNode}, {Name: "x", Role: wire.RoleNone}} {
		if err := Issue(dir, dir, bad); err == nil {
			t.Errorf("Issue(%+v) accepted", bad)
		}
	}
}

// handshake runs a TLS 1.3 handshake between the two configs over a pipe
// and returns the server's view of the client and the client's error.
func handshake(t *testing.T, server, client *tls.Config) (id Identity, serverErr, clientErr error) {
	id, _, serverErr, clientErr = handshakeSerial(t, server, client)
	return id, serverErr, clientErr
}

// handshakeSerial is handshake, and the serial of the server's
// certificate as the client saw it.
func handshakeSerial(t *testing.T, server, client *tls.Config) (id Identity, serial string, serverErr, clientErr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	type res struct {
		id  Identity
		err error
	}
	done := make(chan res, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err != nil {
			done <- res{err: err}
			return
		}
		who, err := IdentityOf(s.ConnectionState())
		s.Close() // the client's read ends at once
		done <- res{who, err}
	}()
	c := tls.Client(b, client)
	cerr := c.Handshake()
	if cerr == nil {
		serial = c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		// TLS 1.3: a refused client certificate shows on the first read.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, cerr = c.Read(make([]byte, 1))
		if errors.Is(cerr, io.EOF) || errors.Is(cerr, os.ErrDeadlineExceeded) {
			cerr = nil
		}
	}
	r := <-done
	return r.id, serial, r.err, cerr
}

func TestHandshakeAndRotation(t *testing.T) {
	dir := mustDev(t)
	node, err := Load(InDir(dir, "n1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := Load(InDir(dir, "reader"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, serr, cerr := handshake(t, node.ServerConfig(), reader.ClientConfig("127.0.0.1"))
	if serr != nil || cerr != nil || id.Name != "reader" || id.Role != wire.RoleReader {
		t.Fatalf("reader to n1: %+v, server %v, client %v", id, serr, cerr)
	}
	// A client without a certificate, or of another CA, is refused.
	noCert := reader.ClientConfig("127.0.0.1")
	noCert.Certificates = nil
	if _, serr, _ := handshake(t, node.ServerConfig(), noCert); serr == nil {
		t.Fatal("a client without a certificate was let in")
	}
	other, err := Load(InDir(mustDev(t), "orderctl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, serr, _ := handshake(t, node.ServerConfig(), other.ClientConfig("127.0.0.1")); serr == nil {
		t.Fatal("a client of another CA was let in")
	}
	// A node dial refuses a server that is no node.
	lb, err := Load(InDir(dir, "orderlb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, cerr := handshake(t, lb.ServerConfig(), node.NodeClientConfig("127.0.0.1")); cerr == nil || !strings.Contains(cerr.Error(), "not a node's") {
		t.Fatalf("node dial to a reader's certificate: %v", cerr)
	}

	// Rotation: a new certificate on disk is presented on new connections.
	serial := func() string {
		_, s, serr, cerr := handshakeSerial(t, node.ServerConfig(), reader.ClientConfig("127.0.0.1"))
		if serr != nil || cerr != nil {
			t.Fatalf("handshake: %v %v", serr, cerr)
		}
		return s
	}
	first := serial()
	if err := Issue(dir, dir, Request{Name: "n1", Role: wire.RoleNode, Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for serial() == first {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was not picked up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A broken file keeps the old one; SIGHUP's Reload says why.
	if err := os.WriteFile(filepath.Join(dir, "n1.crt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.Reload(); err == nil {
		t.Fatal("Reload of a broken certificate succeeded")
	}
	if node.Name() != "n1" {
		t.Fatal("a failed reload dropped the old certificate")
	}
}
