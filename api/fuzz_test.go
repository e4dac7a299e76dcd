package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"orderly/wire"
)

// FuzzOrderBody: any body of POST /v1/orders is answered 201 or a 4xx,
// never a panic, and an order reaches the backend only if it is valid.
// The seeds run as unit tests.
func FuzzOrderBody(f *testing.F) {
	for _, s := range []string{anOrder, `{"customer":7,"number":1,"type":"custom"}`, `{}`, `{"customer":-1,"number":1,"type":"regular"}`,
		`{"customer":7,"number":1,"type":"regular","x":1}`, `{"customer":1e3,"number":1,"type":"regular"}`, `[]`, `null`,
		`{"customer":7,"number":1,"type":"regular"} x`, `{"customer":2147483648,"number":1,"type":"regular"}`, "\xff"} {
		f.Add(s)
	}
	fb := &fakeBackend{}
	g := New(Options{Backend: Backend{Do: fb.do}})
	f.Fuzz(func(t *testing.T, body string) {
		fb.mu.Lock()
		fb.orders = fb.orders[:0]
		fb.mu.Unlock()
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/orders", strings.NewReader(body)))
		fb.mu.Lock()
		defer fb.mu.Unlock()
		switch {
		case rec.Code == http.StatusCreated:
			if len(fb.orders) != 1 {
				t.Fatalf("201 with %d orders sent", len(fb.orders))
			}
		case rec.Code >= 400 && rec.Code < 500:
			if len(fb.orders) != 0 {
				t.Fatalf("%d with an order sent: %+v", rec.Code, fb.orders)
			}
		default:
			t.Fatalf("body %q: status %d", body, rec.Code)
		}
		for _, o := range fb.orders {
			if err := o.Validate(); err != nil || (o.LaptopType != wire.Regular && o.LaptopType != wire.Custom) {
				t.Fatalf("body %q sent an invalid order %+v: %v", body, o, err)
			}
		}
	})
}
