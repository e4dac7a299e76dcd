package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderly/wire"
)

// TestBalancerMaxRole: a balancer's certificate carries what it may
// forward (writer unless issued more); only a balancer's may carry it.
func TestBalancerMaxRole(t *testing.T) {
	dir := t.TempDir()
	if err := InitCA(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		max, want wire.Role
	}{"lb-default": {wire.RoleNone, wire.RoleWriter}, "lb-admin": {wire.RoleAdmin, wire.RoleAdmin}, "lb-reader": {wire.RoleReader, wire.RoleReader}} {
		if err := Issue(dir, dir, Request{Name: name, Role: wire.RoleBalancer, MaxRole: tc.max, Hosts: []string{"127.0.0.1"}}); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(raw)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := maxRoleOf(c); err != nil || got != tc.want {
			t.Errorf("%s: max role %s, %v; want %s", name, got, err, tc.want)
		}
	}
	if err := Issue(dir, dir, Request{Name: "w", Role: wire.RoleWriter, MaxRole: wire.RoleAdmin}); err == nil {
		t.Error("a writer's certificate with a max role was issued")
	}
	if err := Issue(dir, dir, Request{Name: "lb-node", Role: wire.RoleBalancer, MaxRole: wire.RoleNode, Hosts: []string{"x"}}); err == nil {
		t.Error("a balancer's certificate forwarding as a node was issued")
	}
}

// TestDenyList: serials in hex with comments; anything else is refused
// (a deny-list that half-loads would let a revoked certificate in).
func TestDenyList(t *testing.T) {
	path := filepath.Join(t.TempDir(), RevokedFile)
	if err := os.WriteFile(path, []byte("# revoked\n0a1B2c n3 2026-12-07\n\n  ff # a comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := readRevoked(path)
	if err != nil || !set["a1b2c"] || !set["ff"] || len(set) != 2 {
		t.Fatalf("deny-list %v, %v", set, err)
	}
	if err := os.WriteFile(path, []byte("0a1b2c\nnot-a-serial\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readRevoked(path); err == nil {
		t.Fatal("a deny-list with a bad line was loaded")
	}
	if set, err := readRevoked(filepath.Join(t.TempDir(), "none")); err != nil || len(set) != 0 {
		t.Fatalf("no deny-list: %v, %v", set, err)
	}
}
