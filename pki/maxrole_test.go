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
