// Package failpoint injects faults into a cluster under test: the
// nemeses (kill, pause, partition, membership changes, lost disks,
// whole-cluster restarts, leadership transfers, slow and full disks) on a
// schedule drawn from a seed, against local processes or the Docker
// compose cluster (Target). Each fault is recorded with its times and how
// long its target took to catch up afterwards.
package failpoint
