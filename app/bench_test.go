package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	echojwt "github.com/labstack/echo-jwt/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/app"
	"camd/platform/accesslog"
	"camd/platform/secret"
)

// benchApp is a camd provisioned in a fresh data directory, with its access
// log on but written to io.Discard, and an owner token from a real login.
type benchApp struct {
	h        http.Handler
	dataDir  string
	password string
	token    string
}

func newBenchApp(b *testing.B) *benchApp {
	b.Helper()
	dir := b.TempDir()
	var stderr bytes.Buffer
	a, err := app.New(defaultConfig(dir), app.Options{
		Registry:       standardRegistry(),
		PasswordParams: &cheapHash,
		Log:            slog.New(slog.NewJSONHandler(io.Discard, nil)),
		AccessLog:      accesslog.New(io.Discard, "json"), // as camd serve has it
		Stderr:         &stderr,                           // where the initial owner password is printed
	})
	if err != nil {
		b.Fatalf("app.New: %v", err)
	}
	b.Cleanup(a.Close) // never served: release what the modules hold
	pass, ok := strings.CutPrefix(strings.TrimSpace(stderr.String()), "initial owner password: ")
	if !ok {
		b.Fatalf("no initial password in %q", stderr.String())
	}
	ba := &benchApp{h: a.Handler(), dataDir: dir, password: pass}

	rec := ba.serve(http.MethodPost, "/api/login", loginBody(pass), "")
	if rec.Code != http.StatusOK {
		b.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var lr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &lr); err != nil || lr.Token == "" {
		b.Fatalf("login: no token in %s (%v)", rec.Body, err)
	}
	ba.token = lr.Token
	return ba
}

func loginBody(pass string) string { return `{"user":"owner","pass":"` + pass + `"}` }

// serve sends one request through the handler in-process.
func (ba *benchApp) serve(method, target, body, tok string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if tok != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	ba.h.ServeHTTP(rec, req)
	return rec
}

// naiveEcho is the setup camd is measured against: Echo and echo-jwt the way
// their documentation shows them, with the same access-log fields as camd's
// and echo-jwt's defaults (jwt.MapClaims, the default parser).
func naiveEcho(key []byte) *echo.Echo {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:  true,
		LogRequestID: true,
		LogMethod:    true,
		LogURIPath:   true,
		LogStatus:    true,
		LogLatency:   true,
		LogRemoteIP:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("id", v.RequestID),
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("remote", v.RemoteIP),
			)
			return nil
		},
	}))
	e.Use(middleware.Recover())
	e.GET("/api/ack", func(c echo.Context) error {
		claims := c.Get("user").(*jwt.Token).Claims.(jwt.MapClaims)
		return c.JSON(http.StatusOK, map[string]any{
			"user":     claims["sub"],
			"count":    1,
			"acked_at": time.Now().UTC().Format(time.RFC3339Nano),
		})
	}, echojwt.WithConfig(echojwt.Config{SigningKey: key}))
	return e
}

// benchGet runs GET /api/ack with a bearer token through h, reusing one
// prepared request: nothing on the GET path changes the request, so each
// iteration measures the server and a fresh recorder only.
func benchGet(b *testing.B, h http.Handler, tok string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/ack", nil)
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET /api/ack: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// BenchmarkChain measures GET /api/ack through the whole middleware chain
// and handler in-process: camd's, and the naive Echo + echo-jwt setup with
// the same token signed by the same key. The goal is camd at no more than
// half the naive setup's allocs/op.
func BenchmarkChain(b *testing.B) {
	ba := newBenchApp(b)
	if rec := ba.serve(http.MethodPost, "/api/ack", `{"count":1}`, ba.token); rec.Code != http.StatusOK {
		b.Fatalf("POST /api/ack: %d %s", rec.Code, rec.Body)
	}
	key, err := os.ReadFile(filepath.Join(ba.dataDir, secret.FileName))
	if err != nil {
		b.Fatal(err)
	}

	b.Run("camd", func(b *testing.B) { benchGet(b, ba.h, ba.token) })
	b.Run("naive", func(b *testing.B) { benchGet(b, naiveEcho(key), ba.token) })
}

// rewindBody is a request body the benchmark rewinds between iterations
// without allocating.
type rewindBody struct{ *strings.Reader }

func (rewindBody) Close() error { return nil }

// BenchmarkLoginIssue measures POST /api/login at the cheap test hash cost,
// so that it is the HTTP, JSON and token path rather than argon2id.
func BenchmarkLoginIssue(b *testing.B) {
	ba := newBenchApp(b)
	body := loginBody(ba.password)
	rd := strings.NewReader(body)
	rb := rewindBody{rd}
	req := httptest.NewRequest(http.MethodPost, "/api/login", nil)
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	req.ContentLength = int64(len(body))
	// BodyLimit wraps req.Body, so every iteration puts the original back.
	send := func() *httptest.ResponseRecorder {
		rd.Reset(body)
		req.Body = rb
		rec := httptest.NewRecorder()
		ba.h.ServeHTTP(rec, req)
		return rec
	}
	if rec := send(); rec.Code != http.StatusOK {
		b.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		send()
	}
	// b.Loop has stopped the timer.
	if rec := send(); rec.Code != http.StatusOK {
		b.Fatalf("login after the loop: %d %s", rec.Code, rec.Body)
	}
}

// BenchmarkAdminPage measures GET /admin as a browser sends it (Accept:
// text/html, Basic credentials, no Sec-Fetch-Site, so the CSRF cookie path)
// with ten clients listed, and the plain greeting beside it. The credential
// is remembered after the first request (password.RecentTTL), so this is
// the rendering, not argon2id.
func BenchmarkAdminPage(b *testing.B) {
	ba := newBenchApp(b)
	basicAuth := "Basic " + basic("owner", ba.password)
	for i := range 10 {
		req := httptest.NewRequest(http.MethodPost, "/admin/clients", strings.NewReader(`{"name":"cam-`+strconv.Itoa(i)+`"}`))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set(echo.HeaderAuthorization, basicAuth)
		rec := httptest.NewRecorder()
		ba.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("create client: %d %s", rec.Code, rec.Body)
		}
	}
	for _, tc := range []struct{ name, accept, want string }{
		{"page", "text/html,application/xhtml+xml,*/*;q=0.8", "text/html; charset=UTF-8"},
		{"greeting", "*/*", "text/plain; charset=UTF-8"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/admin", nil)
			req.Header.Set(echo.HeaderAuthorization, basicAuth)
			req.Header.Set("Accept", tc.accept)
			rec := httptest.NewRecorder()
			ba.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Header().Get(echo.HeaderContentType) != tc.want {
				b.Fatalf("GET /admin: %d %s %.200s", rec.Code, rec.Header().Get(echo.HeaderContentType), rec.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				ba.h.ServeHTTP(httptest.NewRecorder(), req)
			}
			b.ReportMetric(float64(rec.Body.Len()), "bytes/page")
		})
	}
}
