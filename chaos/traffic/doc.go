// Package traffic is a chaos run's workload: clients that place orders
// and read records through the balancer, straight to the nodes and
// through the balancer's seed-protocol port, recording every operation
// with its invoke and completion times and its outcome (package model).
package traffic
