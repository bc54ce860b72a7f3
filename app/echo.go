package app

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/apierr"
	"camd/internal/profiling"
	"camd/platform/accesslog"
)

// newEcho builds Echo with the middleware every route shares: the front
// door (request id, security headers, access log), then panic recovery.
func newEcho(log *slog.Logger, access *accesslog.Logger, proxies []*net.IPNet) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard) // everything camd logs goes through slog
	e.IPExtractor = ipExtractor(proxies)
	e.HTTPErrorHandler = errorHandler(log)

	e.Use(frontDoor(access))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic recovered", "id", requestID(c), "err", err, "stack", string(stack))
			return err
		},
	}))
	return e
}

// The headers every answer carries, as net/http stores them: canonical keys
// and one-value slices. The front door puts these very slices into each
// answer's header map. That is safe because they are never changed in
// place: Header.Set replaces a slice and Header.Add appends to a full one,
// which copies it.
var (
	keyRequestID  = http.CanonicalHeaderKey(echo.HeaderXRequestID)
	keyNosniff    = http.CanonicalHeaderKey(echo.HeaderXContentTypeOptions)
	keyFrame      = http.CanonicalHeaderKey(echo.HeaderXFrameOptions)
	keyReferrer   = http.CanonicalHeaderKey(echo.HeaderReferrerPolicy)
	valueNosniff  = []string{"nosniff"}
	valueFrame    = []string{"DENY"}
	valueReferrer = []string{"no-referrer"}
)

// frontDoor is the first middleware of every request. It does what Echo's
// RequestID, Secure and RequestLogger would, in one step and without their
// per-request header lookups and closures: under load these were the
// largest part of what camd added to bare net/http (docs/performance.md,
// "Where a request's time goes").
//
//   - The request id is the client's X-Request-Id when it is one short
//     plain header (see plainID), else one camd makes; it is echoed and
//     logged.
//   - nosniff, X-Frame-Options DENY and Referrer-Policy no-referrer go on
//     every answer; a route may loosen Referrer-Policy with Header.Set.
//   - After the handler, an error goes to the error handler first, so that
//     the access line has the status that was sent. The line has the
//     request id, method, path without the query string, status, latency
//     and client address, and no header at all, so a token or password a
//     client puts in the wrong place never reaches the log.
func frontDoor(log *accesslog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			req, res := c.Request(), c.Response()
			id, h := "-", res.Header()
			if !profiling.Off(profiling.RequestID) {
				if v := req.Header[keyRequestID]; len(v) == 1 && plainID(v[0]) {
					id = v[0]
				} else {
					id = newRequestID()
				}
				h[keyRequestID] = []string{id}
			}
			if !profiling.Off(profiling.Headers) {
				h[keyNosniff], h[keyFrame], h[keyReferrer] = valueNosniff, valueFrame, valueReferrer
			}
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			if !profiling.Off(profiling.AccessLog) {
				path := req.URL.Path
				if path == "" {
					path = "/"
				}
				now := time.Now()
				log.Log(accesslog.Entry{
					Time: now, ID: id, Method: req.Method, Path: path,
					Status: res.Status, Latency: now.Sub(start), Remote: c.RealIP(),
				})
			}
			// Handled already; returned for any middleware before this one,
			// as Echo's RequestLogger does. Echo's error handler ignores an
			// error whose answer is committed.
			return err
		}
	}
}

// newRequestID returns 32 random hexadecimal digits (128 bits), letters
// and digits like Echo's own ids. An id names a request in the log and is
// not a secret, so the runtime's fast generator will do: ids must not
// repeat, not be unguessable.
func newRequestID() string {
	var r [16]byte
	binary.LittleEndian.PutUint64(r[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(r[8:], rand.Uint64())
	return hex.EncodeToString(r[:])
}

// maxRequestIDLen bounds a client's X-Request-Id: a proxy's id is a UUID or
// shorter, and the access log must not carry kilobytes a client chose.
const maxRequestIDLen = 64

func plainID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == ':':
		default:
			return false
		}
	}
	return true
}

// ipExtractor decides the client address that is logged and locked out.
// Without trusted proxies it is the TCP peer: X-Forwarded-For is ignored, so
// a client cannot choose its address. With them, Echo walks X-Forwarded-For
// from the right and takes the first hop that is not a trusted proxy.
func ipExtractor(proxies []*net.IPNet) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(p))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func requestID(c echo.Context) string {
	if v := c.Response().Header()[keyRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// errorHandler answers every error as JSON {"error": "...", "code": "..."}.
// An *apierr.Error is camd's own, its message safe to show. An
// *echo.HTTPError comes from Echo's router or middleware (404, 405, 413) or
// a module and gets the code of its status (apierr.FromStatus). Anything else is an internal error: answered
// with a bare 500 and no detail, never a stack trace. Only internal errors
// are logged at ERROR, with the request id: a client's bad request is in
// the access log already, and must not fill a cam's flash.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		body := apierr.Body{Error: "internal server error", Code: apierr.Internal}
		if e, ok := apierr.As(err); ok {
			body = apierr.Body{Error: e.Message, Code: e.Code}
		} else if he := (*echo.HTTPError)(nil); errors.As(err, &he) {
			body.Code = apierr.FromStatus(he.Code)
			if body.Code != apierr.Internal {
				body.Error = strings.ToLower(http.StatusText(he.Code))
			}
			// busy promises a Retry-After: a second, unless the module set one.
			if h := c.Response().Header(); body.Code == apierr.Busy && h.Get(echo.HeaderRetryAfter) == "" {
				h.Set(echo.HeaderRetryAfter, "1")
			}
		}
		status := body.Code.Status()
		if body.Code == apierr.Internal {
			log.Error("request failed", "id", requestID(c), "status", status, "err", err)
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil {
			log.Warn("write error response", "id", requestID(c), "err", err)
		}
	}
}
