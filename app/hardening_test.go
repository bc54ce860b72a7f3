package app_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/app"
	"camd/internal/testlog"
)

// TestRequestID: a client's X-Request-Id is echoed and logged only in a
// short plain form; anything else is replaced by one camd makes, so a
// client cannot write kilobytes of its choosing into the log.
func TestRequestID(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	long := strings.Repeat("A", 7000)
	tests := []struct {
		name  string
		sent  []string
		keeps bool
	}{
		{"none", nil, false},
		{"plain", []string{"req-42.a_b:c"}, true},
		{"a UUID", []string{"8f14e45f-ceea-4671-9a3e-6f1b2c3d4e5f"}, true},
		{"64 characters", []string{strings.Repeat("x", 64)}, true},
		{"65 characters", []string{strings.Repeat("x", 65)}, false},
		{"7 KB", []string{long}, false},
		{"space", []string{"a b"}, false},
		{"quote and brace", []string{`a"}{`}, false},
		{"non-ASCII", []string{"idé"}, false},
		{"two headers", []string{"one", "two"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			for _, v := range tt.sent {
				headers = append(headers, "X-Request-Id: "+v)
			}
			r := do(t, "GET", s.URL+"/healthz", "", headers...)
			got := r.Header.Get("X-Request-Id")
			switch {
			case tt.keeps && got != tt.sent[0]:
				t.Fatalf("X-Request-Id %q; want the client's %q kept", got, tt.sent[0])
			case !tt.keeps && (len(got) != 32 || !isAlnum(got)):
				t.Fatalf("X-Request-Id %q; want one camd made (32 letters and digits)", got)
			}
		})
	}
	if strings.Contains(s.Logs.String(), strings.Repeat("A", 100)) {
		t.Fatal("the 7 KB request id reached the log")
	}
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// TestBasicTwoAuthorizationHeaders: the Basic routes refuse two
// Authorization headers with 400, as the bearer routes do, instead of
// taking the first.
func TestBasicTwoAuthorizationHeaders(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	good, bad := "Authorization: Basic "+basic("owner", s.Password), "Authorization: Basic "+basic("owner", "wrong password")
	tests := []struct {
		name    string
		headers []string
		want    int
	}{
		{"one, right", []string{good}, http.StatusOK},
		{"right then wrong", []string{good, bad}, http.StatusBadRequest},
		{"wrong then right", []string{bad, good}, http.StatusBadRequest},
		{"right twice", []string{good, good}, http.StatusBadRequest},
		{"bearer then basic", []string{"Authorization: Bearer x.y.z", good}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/admin", "/admin/status"} {
				r := do(t, "GET", s.URL+path, "", tt.headers...)
				if r.Status != tt.want {
					t.Fatalf("GET %s: %d %s; want %d", path, r.Status, r.Body, tt.want)
				}
				if tt.want == http.StatusBadRequest && r.JSON(t)["error"] != "more than one Authorization header" {
					t.Fatalf("GET %s: body %s", path, r.Body)
				}
				if tt.want == http.StatusBadRequest {
					checkError(t, r, apierr.InvalidRequest)
				}
			}
		})
	}
}

// TestClientMistakesNotLoggedAsErrors: a client's mistake, such as a
// malformed Authorization header anyone on the LAN can send, is answered
// with its code and written to the access log, and nothing more: only
// internal errors are logged at ERROR, so a cam's flash does not fill with
// them. (Before the error vocabulary, Echo's BasicAuth answered "Basic !!!"
// with an HTTPError carrying the base64 error as its Internal, and the
// error handler logged every such error at ERROR.) Nor is a module's
// echo.NewHTTPError refusal, such as a 503 while it is busy.
func TestClientMistakesNotLoggedAsErrors(t *testing.T) {
	panicky := app.ModuleInfo{ID: "test.panic", New: func() app.Module { return panicModule{} }}
	refusing := app.ModuleInfo{ID: "test.refuse", New: func() app.Module { return refuseModule{} }}
	s := startServer(t, "", serverOpts{registry: standardRegistry(panicky, refusing)})
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     apierr.Code
	}{
		{"Basic not base64", "GET", "/admin/status", "", []string{"Authorization: Basic !!!"}, 400, apierr.InvalidRequest},
		{"Basic not base64 on the page", "GET", "/admin", "", []string{"Authorization: Basic !!!", "Accept: text/html"}, 400, apierr.InvalidRequest},
		{"Basic not base64 on a change", "POST", "/admin/password", `{"password":"x"}`, []string{"Authorization: Basic !!!", jsonCT}, 400, apierr.InvalidRequest},
		{"Basic without a colon", "GET", "/admin/status", "", []string{"Authorization: Basic b3duZXI="}, 401, apierr.InvalidCredentials},
		{"two Basic headers", "GET", "/admin/status", "", []string{"Authorization: Basic !!!", "Authorization: Basic !!!"}, 400, apierr.InvalidRequest},
		{"Bearer garbage", "GET", "/api/ack", "", []string{"Authorization: Bearer !!!"}, 401, apierr.InvalidToken},
		{"malformed body", "POST", "/api/login", `{"user":`, []string{jsonCT}, 400, apierr.InvalidBody},
		{"no such route", "GET", "/nope", "", nil, 404, apierr.NotFound},
		{"wrong method", "DELETE", "/healthz", "", nil, 405, apierr.MethodNotAllowed},
		{"a module's 403", "GET", "/test/refuse/403", "", nil, 403, apierr.InsufficientScope},
		{"a module's 429", "GET", "/test/refuse/429", "", nil, 503, apierr.Busy},
		{"a module's 503", "GET", "/test/refuse/503", "", nil, 503, apierr.Busy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, s.URL+tc.path, tc.body, tc.headers...)
			if r.Status != tc.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, tc.status)
			}
			checkError(t, r, tc.code)
			if tc.code == apierr.Busy && r.Header.Get("Retry-After") == "" {
				t.Error("busy without Retry-After")
			}
			// The access log has it, under the id the answer carries.
			id := r.Header.Get("X-Request-Id")
			if lines := s.Logs.Lines("level=INFO", "msg=request", "id="+id, "path="+tc.path+" ", " status="+strconv.Itoa(tc.status)+" "); len(lines) != 1 {
				t.Errorf("access log lines for request %s: %q, want one with status %d", id, lines, tc.status)
			}
		})
	}
	if lines := testlog.AtLevel(s.Logs.String(), "ERROR"); len(lines) != 0 {
		t.Errorf("client mistakes logged at ERROR:\n%s", strings.Join(lines, "\n"))
	}
	if strings.Contains(s.Logs.String(), "!!!") {
		t.Error("a client's Authorization header reached the log")
	}
	// The control: an internal error is logged at ERROR, with its id.
	r := do(t, "GET", s.URL+"/test/panic", "")
	checkError(t, r, apierr.Internal)
	if lines := s.Logs.Lines("level=ERROR", "msg=\"request failed\"", "id="+r.Header.Get("X-Request-Id")); len(lines) != 1 {
		t.Errorf("the internal error was not logged at ERROR once: %q\n%s", lines, s.Logs.String())
	}
}

// refuseModule answers GET /test/refuse/STATUS with echo.NewHTTPError(STATUS).
type refuseModule struct{}

func (refuseModule) Provision(d app.Deps) error {
	d.Echo.GET("/test/refuse/:status", func(c echo.Context) error {
		status, err := strconv.Atoi(c.Param("status"))
		if err != nil {
			return err
		}
		return echo.NewHTTPError(status)
	})
	return nil
}
