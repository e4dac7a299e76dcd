// Package chaos runs orderly clusters as real processes and injects
// failures into them. Its Cluster is also the harness of the end-to-end
// tests: nodes are started from built binaries on free loopback ports, and
// killed with SIGKILL, paused with SIGSTOP, and restarted from their data
// dirs.
package chaos
