package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"orderly/api"
)

// apiSpec is api/openapi.yaml, loaded and validated once; every call of
// an apiClient is checked against it, request and response, so the
// description cannot drift from the servers.
var apiSpec = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil // any host: the tests' ports are free ports
	return legacy.NewRouter(doc)
})

// apiClient calls a side port's /v1/ API presenting certificate name
// ("": none).
type apiClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newAPIClient(t *testing.T, addr, name string) *apiClient {
	t.Helper()
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: sideTLS(t, addr, name), ForceAttemptHTTP2: true}}
	t.Cleanup(hc.CloseIdleConnections)
	return &apiClient{t: t, base: "https://" + addr, hc: hc}
}

// apiReply is a validated answer.
type apiReply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r apiReply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer %d %s: %v", r.Status, r.Body, err)
	}
}

// errorCode is the code of an Error body.
func (r apiReply) errorCode() string {
	var e struct{ Code string }
	json.Unmarshal(r.Body, &e) //nolint:errcheck // an empty code fails the caller's check
	return e.Code
}

// do sends a call and checks it and its answer against the description;
// a transport error is returned (a leader killed mid-call).
func (c *apiClient) do(method, path string, header http.Header, body []byte) (apiReply, error) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return apiReply{}, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiReply{}, err
	}
	c.validate(req, body, resp, got)
	return apiReply{Status: resp.StatusCode, Header: resp.Header, Body: got}, nil
}

// must is do that fails the test on a transport error.
func (c *apiClient) must(method, path string, header http.Header, body []byte) apiReply {
	c.t.Helper()
	r, err := c.do(method, path, header, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// validate checks the answer always, and the request when it was meant to
// be valid (an answer below 400: the tests send invalid ones on purpose).
func (c *apiClient) validate(req *http.Request, body []byte, resp *http.Response, got []byte) {
	c.t.Helper()
	router, err := apiSpec()
	if err != nil {
		c.t.Fatalf("api/openapi.yaml: %v", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return // a path or method the description does not have, on purpose
		}
		c.t.Fatalf("%s %s: not in api/openapi.yaml: %v", req.Method, req.URL.Path, err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if resp.StatusCode < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s %s: request does not match api/openapi.yaml: %v", req.Method, req.URL.Path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") ||
		strings.HasPrefix(resp.Header.Get("Content-Type"), "application/octet-stream") {
		out.Options.ExcludeResponseBody = true
	}
	out.SetBodyBytes(got)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s: answer %d %s does not match api/openapi.yaml: %v", req.Method, req.URL.Path, resp.StatusCode, got, err)
	}
}

// order places an order, with key as its Idempotency-Key ("": none).
func (c *apiClient) order(customer, number int32, typ, key string) (apiReply, error) {
	c.t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", `"`+key+`"`)
	}
	b, _ := json.Marshal(map[string]any{"customer": customer, "number": number, "type": typ})
	return c.do(http.MethodPost, "/v1/orders", h, b)
}
