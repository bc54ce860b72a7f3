package app

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/apierr"
)

// newEcho builds Echo with the middleware every route shares: a request id,
// the access log, panic recovery and a few response headers.
func newEcho(log *slog.Logger, proxies []*net.IPNet) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard) // everything camd logs goes through slog
	e.IPExtractor = ipExtractor(proxies)
	e.HTTPErrorHandler = errorHandler(log)

	e.Use(plainRequestID, middleware.RequestID())
	e.Use(accessLog(log))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic recovered", "id", requestID(c), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		ReferrerPolicy:     "no-referrer",
	}))
	return e
}

// maxRequestIDLen bounds a client's X-Request-Id: a proxy's id is a UUID or
// shorter, and the access log must not carry kilobytes a client chose.
const maxRequestIDLen = 64

// plainRequestID drops a client's X-Request-Id unless it is short and made
// only of letters, digits and "-._:", so that RequestID makes one instead:
// the id is echoed and logged, and must not carry what a client wants in
// the log.
func plainRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if v, ok := h[echo.HeaderXRequestID]; ok && (len(v) != 1 || !plainID(v[0])) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

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

// accessLog logs one line per request with its id. It logs the path without
// the query string and no headers at all, so a token or password a client
// puts in the wrong place never reaches the log.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:  true, // run the error handler first, so the status is the one sent
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
	})
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
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
