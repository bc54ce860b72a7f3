package app

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/labstack/echo/v4"

	"camd/platform/accesslog"
)

// TestSecurityHeadersNotShared: the front door puts the same header value
// slices into every answer. A route that changes those headers in every
// way Header allows must change only its own answer, never the next one.
func TestSecurityHeadersNotShared(t *testing.T) {
	e := newEcho(slog.New(slog.DiscardHandler), accesslog.New(io.Discard, "text"), nil)
	e.GET("/loosen", func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(echo.HeaderReferrerPolicy, "same-origin") // as the admin page does
		h.Add(echo.HeaderXFrameOptions, "SAMEORIGIN")
		h.Add(echo.HeaderXContentTypeOptions, "other")
		h.Del(echo.HeaderXRequestID)
		return c.String(http.StatusOK, "ok")
	})
	e.GET("/plain", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })

	want := map[string][]string{
		"X-Content-Type-Options": {"nosniff"},
		"X-Frame-Options":        {"DENY"},
		"Referrer-Policy":        {"no-referrer"},
	}
	for _, path := range []string{"/loosen", "/plain", "/loosen", "/no/such/route"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if path == "/loosen" {
			continue
		}
		for k, v := range want {
			if got := rec.Header().Values(k); !slices.Equal(got, v) {
				t.Errorf("%s after /loosen: %s = %q, want %q", path, k, got, v)
			}
		}
		if len(rec.Header().Values(echo.HeaderXRequestID)) != 1 {
			t.Errorf("%s: X-Request-Id %q, want one", path, rec.Header().Values(echo.HeaderXRequestID))
		}
	}
	for name, v := range map[string][]string{"nosniff": valueNosniff, "frame": valueFrame, "referrer": valueReferrer} {
		if len(v) != 1 || cap(v) != 1 {
			t.Errorf("%s value slice is now %q (cap %d)", name, v, cap(v))
		}
	}
	if valueNosniff[0] != "nosniff" || valueFrame[0] != "DENY" || valueReferrer[0] != "no-referrer" {
		t.Errorf("shared values changed: %q %q %q", valueNosniff, valueFrame, valueReferrer)
	}
}
