package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"orderly/wire"
)

// apiError is the JSON body of every answer that is not a success.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Retryable: sending the same call again may succeed. For a write
	// with an unknown outcome, only with the same Idempotency-Key.
	Retryable bool `json:"retryable"`
	// Outcome of a write: "not_applied" (sure) or "unknown" (it may have
	// been applied, or may yet be). Empty for reads.
	Outcome string `json:"outcome,omitempty"`
	// Leader is the leader's client address, with NotLeader.
	Leader string `json:"leader,omitempty"`
	// Oldest is the first position a watch can still start at, with
	// Compacted.
	Oldest uint64 `json:"oldest,omitempty"`
	// Shard is the shard whose feed ended a watch of every customer of a
	// sharded cluster.
	Shard *uint32 `json:"shard,omitempty"`
}

// Codes of the HTTP API beside the orderly protocol's (wire.Code).
const (
	codeNotFound          = "NotFound"
	codeIdempotencyReused = "IdempotencyKeyReused"
	codeCompacted         = "Compacted"
	codeUnauthenticated   = "Unauthenticated"
	codeMethodNotAllowed  = "MethodNotAllowed"
)

// statusOf maps an orderly-protocol error code to its HTTP status.
func statusOf(c wire.Code) int {
	switch c {
	case wire.CodeBadRequest:
		return http.StatusBadRequest
	case wire.CodePermissionDenied:
		return http.StatusForbidden
	case wire.CodeStaleSeq:
		return http.StatusConflict
	case wire.CodeOverloaded:
		return http.StatusTooManyRequests
	case wire.CodeNotLeader, wire.CodeUnavailable, wire.CodeNoSpace:
		return http.StatusServiceUnavailable
	case wire.CodeTimeout, wire.CodeSessionExpired:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// sureRefusal reports whether a write answered c was surely not applied.
// Any other code, one this build does not know included, leaves the
// outcome unknown.
func sureRefusal(c wire.Code) bool {
	switch c {
	case wire.CodeBadRequest, wire.CodeNotLeader, wire.CodeUnavailable, wire.CodeOverloaded,
		wire.CodeStaleSeq, wire.CodePermissionDenied, wire.CodeNoSpace:
		return true
	}
	return false
}

// retryable reports whether the same call may succeed if sent again.
func retryable(c wire.Code) bool {
	switch c {
	case wire.CodeNotLeader, wire.CodeUnavailable, wire.CodeOverloaded, wire.CodeNoSpace,
		wire.CodeTimeout, wire.CodeSessionExpired, wire.CodeInternal:
		return true
	}
	return false
}

// callKind is what a failed call was: its outcome, and whether sending
// it again is safe, depend on it.
type callKind uint8

const (
	readCall   callKind = iota
	writeCall           // without an Idempotency-Key: never safe to resend if the outcome is unknown
	keyedWrite          // with one: safe to resend with the same key
)

// writeWireError answers err, an orderly-protocol error (or any error: an
// Internal one), for a call of kind k.
func writeWireError(w http.ResponseWriter, err error, k callKind) {
	var e *wire.Error
	if !errors.As(err, &e) {
		e = &wire.Error{Code: wire.CodeInternal, Message: err.Error()}
	}
	body := apiError{Code: e.Code.String(), Message: e.Message, Retryable: retryable(e.Code), Leader: e.LeaderAddr}
	if k != readCall {
		body.Outcome = "not_applied"
		if !sureRefusal(e.Code) {
			body.Outcome = "unknown"
			// Resent without a key, an order that was applied is
			// applied again.
			body.Retryable = k == keyedWrite
		}
	}
	switch e.Code {
	case wire.CodeOverloaded, wire.CodeNoSpace, wire.CodeUnavailable, wire.CodeNotLeader:
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, statusOf(e.Code), body)
}

// writeError answers an error of the HTTP layer itself.
func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, apiError{Code: code, Message: fmt.Sprintf(format, args...)})
}

// badRequest answers a call that could not be read; nothing was applied.
func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, apiError{Code: wire.CodeBadRequest.String(),
		Message: fmt.Sprintf(format, args...), Outcome: "not_applied"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are written: a bug
		status, b = http.StatusInternalServerError, []byte(`{"code":"Internal","message":"encode answer","retryable":false}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n')) //nolint:errcheck // the client went away: nothing to tell it
}
