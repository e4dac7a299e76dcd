// Package pki makes and loads the certificates of an orderly cluster:
// a CA, and node, balancer and client certificates signed by it, each
// carrying one role (wire.Role) in its subject's organizational unit and
// its name (a node's id) in the common name. It builds the mutual TLS 1.3
// configurations every orderly port uses and picks up new certificate and
// key files without a restart (Source).
package pki
