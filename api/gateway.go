package api

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"orderly/pki"
	"orderly/serve"
	"orderly/wire"
)

// Backend is what the gateway calls: the handlers of the process's binary
// port.
type Backend struct {
	// Do answers one request; the gateway has checked the caller's role.
	// It bounds the request's time itself.
	Do serve.Handler
	// Watch serves a change feed.
	Watch serve.StreamHandler
	// Shards is the cluster's shard count, once known: the gateway keeps
	// its own sessions per shard (each shard starts a session only at
	// seq 1), and watches every customer of a sharded cluster shard by
	// shard. nil: one shard.
	Shards func(ctx context.Context) (uint32, error)
}

// Options configure a Gateway.
type Options struct {
	Backend
	// Secure: callers present a client certificate of the cluster and
	// their role bounds what they may call. Without it (--insecure)
	// every caller may call everything.
	Secure bool
	Limits
	Logger hclog.Logger
}

// Gateway serves /v1/... .
type Gateway struct {
	opt     Options
	mux     *http.ServeMux
	clients *clients
	lanes   *lanes
	log     hclog.Logger
}

// New builds the gateway.
func New(opt Options) *Gateway {
	opt.Limits = opt.Limits.withDefaults()
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	g := &Gateway{opt: opt, mux: http.NewServeMux(), clients: newClients(opt.Limits), lanes: &lanes{}, log: opt.Logger}
	g.routes()
	return g
}

func (g *Gateway) routes() {
	g.route("/v1/orders", methods{http.MethodPost: g.order})
	g.route("/v1/customers/{id}", methods{http.MethodGet: g.get})
	g.route("/v1/customers", methods{http.MethodGet: g.scan})
	g.route("/v1/watch", methods{http.MethodGet: g.watch})
	g.route("/v1/status", methods{http.MethodGet: g.status})
	g.route("/v1/shards", methods{http.MethodGet: g.shards})
	g.route("/v1/members", methods{http.MethodGet: g.members, http.MethodPost: g.addMember})
	g.route("/v1/members/{id}", methods{http.MethodDelete: g.removeMember})
	g.route("/v1/leader/transfer", methods{http.MethodPost: g.transferLeader})
	g.route("/v1/snapshot", methods{http.MethodGet: g.snapshot})
	g.mux.HandleFunc("/v1/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(Spec) //nolint:errcheck // the client went away
	})
	g.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no API call at %s %s (see /v1/openapi.yaml)", r.Method, r.URL.Path)
	})
}

// call is one API call's handler, given who called.
type call func(w http.ResponseWriter, r *http.Request, from serve.Caller)

// methods routes a path's calls by method; others are answered 405.
type methods map[string]call

func (g *Gateway) route(pattern string, ms methods) {
	g.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, ok := ms[r.Method]
		if !ok {
			for m := range ms {
				w.Header().Add("Allow", m)
			}
			writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "%s takes no %s", r.URL.Path, r.Method)
			return
		}
		from, ok := g.caller(w, r)
		if !ok {
			return
		}
		c(w, r, from)
	})
}

// ServeHTTP serves /v1/... .
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// caller names who sent r: its certificate's name and role. Without TLS
// (--insecure) a caller is known by its address, has no role, and may
// call everything.
func (g *Gateway) caller(w http.ResponseWriter, r *http.Request) (serve.Caller, bool) {
	from := serve.Caller{ConnID: connID(r.Context())}
	if !g.opt.Secure {
		from.Name = hostOf(r.RemoteAddr)
		return from, true
	}
	if r.TLS == nil {
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "a client certificate of the cluster is needed")
		return from, false
	}
	id, err := pki.IdentityOf(*r.TLS)
	if err != nil {
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "a client certificate of the cluster is needed: %v", err)
		return from, false
	}
	from.Name, from.Role, from.MaxRole = id.Name, id.Role, id.MaxRole
	return from, true
}

// doAs runs req, a call that writes no order, and takes its answer as a
// T; it answers an error itself.
func doAs[T wire.Message](g *Gateway, w http.ResponseWriter, r *http.Request, from serve.Caller, req wire.Message) (T, bool) {
	resp, err := g.call(r, from, req)
	return answerAs[T](w, req, resp, err, readCall)
}

// answerAs takes resp, req's answer, as a T. An error, or an answer of
// another type, is answered to the client as a failed call of kind k.
func answerAs[T wire.Message](w http.ResponseWriter, req, resp wire.Message, err error, k callKind) (T, bool) {
	var zero T
	if err != nil {
		writeWireError(w, err, k)
		return zero, false
	}
	t, ok := resp.(T)
	if !ok {
		writeWireError(w, wire.Errorf(wire.CodeInternal, "%s answered with %s", req.Type(), resp.Type()), k)
		return zero, false
	}
	return t, true
}

// call runs req on the backend for a caller its role allows and its
// bounds admit.
func (g *Gateway) call(r *http.Request, from serve.Caller, req wire.Message) (wire.Message, error) {
	release, err := g.admit(from, req)
	if err != nil {
		return nil, err
	}
	defer release()
	return g.send(r, from, req)
}

// admit checks that from may send req and takes a slot for it: a
// watcher's for a Watch, a call's for the rest.
func (g *Gateway) admit(from serve.Caller, req wire.Message) (release func(), err error) {
	if _, _, err := serve.Permit(from, req, g.opt.Secure); err != nil {
		return nil, err
	}
	if req.Type() == wire.TypeWatch {
		return g.clients.take(from.Name, watchSlot)
	}
	return g.clients.take(from.Name, callSlot)
}

// send runs an admitted req on the backend. The backends bound a request
// themselves (a node's --request-timeout, the balancer's retry budget);
// a context with a timeout of the gateway's own would only cost a timer
// per call.
func (g *Gateway) send(r *http.Request, from serve.Caller, req wire.Message) (wire.Message, error) {
	resp := g.opt.Do(r.Context(), from, req)
	if e, ok := resp.(*wire.Error); ok {
		return nil, e
	}
	return resp, nil
}

// certDigest identifies the client certificate of r (empty without
// one): an Idempotency-Key is the client's, not everyone's.
func certDigest(r *http.Request) []byte {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	return sum[:]
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

type connIDKey struct{}

var lastConnID atomic.Int32

// ConnContext numbers each connection of the side port (http.Server's
// ConnContext): a node uses the number as the engineer id of the orders
// the connection carries, as on the binary port.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connIDKey{}, lastConnID.Add(1)&0x7fffffff)
}

func connID(ctx context.Context) int32 {
	id, _ := ctx.Value(connIDKey{}).(int32)
	return id
}
