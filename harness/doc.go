// Package harness runs orderly clusters as real processes: nodes started
// from built binaries on free loopback ports (or each in a network
// namespace of its own, so its Raft traffic can be cut), a balancer in
// front of them, or the Docker compose cluster of deploy/. Nodes are
// killed with SIGKILL, paused with SIGSTOP, restarted from their data
// dirs, and their data dirs can sit on a small tmpfs to be filled up.
//
// The end-to-end tests, make bench and the chaos runs share it; it knows
// nothing of workloads, faults or checks.
package harness
