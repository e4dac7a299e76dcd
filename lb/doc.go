// Package lb is orderly's balancer: one TCP front for a cluster.
//
// pool.go keeps a long-lived pipelined connection to every node and
// probes each with Status, so it knows who leads and who is healthy.
// forward.go sends writes to the leader and reads round-robin to healthy
// followers, retrying on another node within a deadline; a write is
// retried with the client's own (client_id, seq), so the FSM applies it
// once. async.go forwards an order with no goroutine waiting for it: the
// leader's answer goes back to the client from the reader of the leader's
// connection, and only a failed attempt moves to the retry loop.
// cache.go is an LRU of customer records tagged with the Raft index they
// were read at, which serves session and stale reads; linearizable.go
// keeps it coherent with the leader's change feed and answers
// linearizable reads from it behind a read index. handlers.go answers
// the orderly protocol; legacy.go speaks the seed system's 12-byte
// protocol; watch.go relays change feeds.
//
// Balancer.Close stops every goroutine the package starts.
package lb
