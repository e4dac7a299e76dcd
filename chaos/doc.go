// Package chaos runs a Jepsen-style test of orderly: it starts a cluster
// and a balancer (package harness), drives a workload (traffic) while
// injecting faults (failpoint), heals everything, reads every record,
// checks the history (validate, against model) and writes the report
// (report). The split follows etcd's robustness tests.
package chaos
