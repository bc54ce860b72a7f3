package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// BenchmarkVerify measures the per-request credential check as a request
// pays it: the token format (camd/token's BenchmarkVerify) plus the owner's
// password-version check or the client's revocation check.
func BenchmarkVerify(b *testing.B) {
	f := open(b, nil)
	for _, bc := range []struct{ name, tok string }{
		{"owner", f.login(b)},
		{"client", f.addClient(b, "porch-esp32", "ack", "ack:read")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := f.svc.Verify(bc.tok); err != nil {
				b.Fatalf("Verify: %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.svc.Verify(bc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBearer measures the Bearer middleware around a handler that does
// nothing, in-process: echo-jwt, the scope check and the usage record.
func BenchmarkBearer(b *testing.B) {
	f := open(b, nil)
	tok := f.addClient(b, "porch-esp32", "ack")
	e := echo.New()
	e.GET("/p", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, f.svc.Bearer("ack"))
	req := httptest.NewRequest(http.MethodGet, "/p", nil)
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
