// Package testclient is a helper of other packages' tests: a client
// session of an address. Product code never imports it.
package testclient

import (
	"testing"
	"time"

	"orderly/client"
)

// Session is a client of addr with the retry budget given, and a session
// of it; the client is closed at the end of the test.
func Session(t testing.TB, addr string, budget time.Duration) (*client.Client, *client.Session) {
	t.Helper()
	c, err := client.New(client.Options{Addrs: []string{addr}, RetryTimeout: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}
