// Package api is orderly's HTTP/JSON API (/v1/...), served on the HTTPS
// side port of orderd and orderlb beside /metrics and the operator's
// page. It is a gateway: each call becomes the orderly-protocol request
// the binary port would get, goes to the same handler (a node's or a
// balancer's), with the same role check, and its answer becomes JSON.
// So there is one parser and one check per request, and HTTP can do
// nothing the binary protocol cannot.
//
// Writes are exactly-once as on the binary port: a call without an
// Idempotency-Key runs in one of the gateway's own sessions (a
// (client_id, seq) the balancer retries with), one with a key in a
// session of its own, derived from the client certificate and the key,
// so that a retry with the key, on any node or balancer, is answered from
// the FSM's session and applied once (see orders.go).
//
// openapi.yaml is the contract; the tests validate real traffic against
// it. It never holds more than the code does.
package api
