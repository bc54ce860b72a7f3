package apitest_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"camd/internal/apitest"
)

// reports collects what a check reports, in place of a *testing.T that
// would fail this test.
type reports struct {
	mu   sync.Mutex
	msgs []string
}

func (*reports) Helper() {}

func (r *reports) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// answer is what the fake camd sends back.
type answer struct {
	status  int
	ctype   string
	headers []string // "Name: value"
	body    string
}

// errBody is camd's JSON error with code.
func errBody(code string) string { return `{"error":"no","code":"` + code + `"}` }

const (
	jsonCT   = "application/json"
	token    = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvd25lciJ9.c2ln"
	bearerOK = "Bearer " + token
)

var basicOK = "Basic " + base64.StdEncoding.EncodeToString([]byte("owner:pw"))

// TestCheck: the check passes exchanges the document describes and reports
// each kind of disagreement, naming method, path and status.
func TestCheck(t *testing.T) {
	login := `{"user":"owner","pass":"pw"}`
	tokenBody := `{"token":"` + token + `","token_type":"Bearer","expires_in":3600}`
	noStore := []string{"Cache-Control: no-store", "Pragma: no-cache"}
	tests := []struct {
		name        string
		method      string
		path        string
		ctype, body string
		auth        string
		answer      answer
		want        string // in the report; "" for none
	}{
		{"documented text answer", "GET", "/admin", "", "", basicOK,
			answer{200, "text/plain; charset=UTF-8", []string{"Vary: Accept"}, "hi owner"}, ""},
		{"documented JSON answer", "POST", "/api/login", jsonCT, login, "",
			answer{200, jsonCT, noStore, tokenBody}, ""},
		{"undocumented status", "GET", "/admin", "", "", basicOK,
			answer{418, jsonCT, nil, errBody("internal")}, "status is not supported"},
		{"body off its schema", "GET", "/admin/status", "", "", basicOK,
			answer{200, jsonCT, nil, `{"clients":"3","tls_fingerprint":null}`}, `Error at "/clients"`},
		{"undocumented member", "GET", "/admin/status", "", "", basicOK,
			answer{200, jsonCT, nil, `{"clients":3,"tls_fingerprint":null,"secret":"x"}`}, `"secret" is unsupported`},
		{"documented header missing", "POST", "/api/login", jsonCT, login, "",
			answer{200, jsonCT, nil, tokenBody}, `response header "Cache-Control" missing`},
		{"challenge missing", "GET", "/admin", "", "", "",
			answer{401, jsonCT, nil, errBody("missing_credentials")}, `"WWW-Authenticate" missing`},
		{"wrong challenge", "GET", "/api/ack", "", "", "",
			answer{401, jsonCT, []string{`WWW-Authenticate: Basic realm="camd"`}, errBody("missing_token")}, `"WWW-Authenticate" doesn't match`},
		{"RFC 6750 challenge", "GET", "/api/ack", "", "", "",
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd"`}, errBody("missing_token")}, ""},
		{"RFC 6750 challenge for a refused token", "GET", "/api/ack", "", "", bearerOK,
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd", error="invalid_token", error_description="the token has expired; log in again"`}, errBody("token_expired")}, ""},
		{"error_description with a quote", "GET", "/api/ack", "", "", bearerOK,
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd", error="invalid_token", error_description="a "quoted" name"`}, errBody("token_revoked")}, `"WWW-Authenticate" doesn't match`},
		{"error without a code", "GET", "/api/ack", "", "", "",
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd"`}, `{"error":"no"}`}, `property "code" is missing`},
		{"a code not in the vocabulary", "GET", "/api/ack", "", "", "",
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd"`}, errBody("nope")}, `Error at "/code"`},
		{"a code the response does not list", "GET", "/api/ack", "", "", "",
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd"`}, errBody("locked_out")}, `Error at "/code"`},
		{"login 401 with its challenge", "POST", "/api/login", jsonCT, login, "",
			answer{401, jsonCT, []string{`WWW-Authenticate: Bearer realm="camd"`}, errBody("invalid_credentials")}, ""},
		{"login 401 without a challenge", "POST", "/api/login", jsonCT, login, "",
			answer{401, jsonCT, nil, errBody("invalid_credentials")}, `"WWW-Authenticate" missing`},
		{"net/http's 431, text/plain", "GET", "/healthz", "", "", "",
			answer{431, "text/plain; charset=utf-8", nil, "431 Request Header Fields Too Large"}, ""},
		{"431 as JSON", "GET", "/healthz", "", "", "",
			answer{431, jsonCT, nil, errBody("invalid_request")}, "Content-Type"},
		{"Retry-After missing", "POST", "/api/login", jsonCT, login, "",
			answer{429, jsonCT, nil, errBody("locked_out")}, `"Retry-After" missing`},
		{"route missing from the document", "GET", "/nope", "", "", "",
			answer{200, jsonCT, nil, `{}`}, "route missing from the document"},
		{"unknown route refused", "GET", "/nope", "", "", "",
			answer{404, jsonCT, nil, `{"error":"not found","code":"not_found"}`}, ""},
		{"unknown route refused without a code", "GET", "/nope", "", "", "",
			answer{404, jsonCT, nil, `{"error":"not found"}`}, "does not match the Error schema"},
		{"unknown route refused without JSON", "GET", "/nope", "", "", "",
			answer{404, "text/plain", nil, "404 page not found"}, "want application/json"},
		{"method missing from the document", "DELETE", "/healthz", "", "", "",
			answer{204, "", nil, ""}, "method missing from the document"},
		{"wrong method refused", "DELETE", "/healthz", "", "", "",
			answer{405, jsonCT, []string{"Allow: GET"}, `{"error":"method not allowed","code":"method_not_allowed"}`}, ""},
		{"405 without Allow", "DELETE", "/healthz", "", "", "",
			answer{405, jsonCT, nil, `{"error":"method not allowed","code":"method_not_allowed"}`}, "405 without Allow"},
		{"OPTIONS", "OPTIONS", "/api/ack", "", "", "",
			answer{204, "", []string{"Allow: OPTIONS, GET, POST"}, ""}, ""},
		{"OPTIONS without Allow", "OPTIONS", "/api/ack", "", "", "",
			answer{204, "", nil, ""}, "want 204 with Allow"},
		{"wrong method on a templated path refused", "GET", "/admin/clients/porch-esp32", "", "", basicOK,
			answer{405, jsonCT, []string{"Allow: DELETE"}, `{"error":"method not allowed","code":"method_not_allowed"}`}, ""},
		{"wrong method on a templated path served", "GET", "/admin/clients/porch-esp32", "", "", basicOK,
			answer{200, jsonCT, nil, `{}`}, "method missing from the document"},
		{"HEAD refused", "HEAD", "/healthz", "", "", "",
			answer{405, jsonCT, []string{"Allow: GET"}, ""}, ""},
		{"refused request accepted", "POST", "/api/login", "text/plain", login, "",
			answer{200, jsonCT, noStore, tokenBody}, "camd accepted a request the document refuses"},
		{"refused request refused", "POST", "/api/login", "text/plain", login, "",
			answer{415, jsonCT, nil, errBody("unsupported_media_type")}, ""},
		{"documented Content-Type refused", "POST", "/api/login", jsonCT, login, "",
			answer{415, jsonCT, nil, errBody("unsupported_media_type")}, "answered 415"},
		{"member missing, accepted", "POST", "/api/login", jsonCT, `{"user":"owner"}`, "",
			answer{200, jsonCT, noStore, tokenBody}, "camd accepted"},
		{"no bearer token, accepted", "GET", "/api/ack", "", "", "",
			answer{200, jsonCT, nil, `{"user":"owner","count":1,"acked_at":"2026-11-28T16:02:11.5Z"}`}, "camd accepted"},
		{"two Authorization headers, accepted", "GET", "/api/ack", "", "", bearerOK + "\n" + bearerOK,
			answer{200, jsonCT, nil, `{"user":"owner","count":1,"acked_at":"2026-11-28T16:02:11.5Z"}`}, "camd accepted"},
		{"Basic credentials without a colon, accepted", "GET", "/admin", "", "",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("owner")),
			answer{200, "text/plain", nil, "hi owner"}, "camd accepted"},
		{"bearer token with a valid request", "GET", "/api/ack", "", "", "bearer " + token,
			answer{200, jsonCT, nil, `{"user":"owner","count":1,"acked_at":"2026-11-28T16:02:11.5Z"}`}, ""},
		{"path parameter off its pattern, refused", "DELETE", "/admin/clients/a%20b", "", "", basicOK,
			answer{404, jsonCT, nil, errBody("not_found")}, ""},
		{"test-only route skipped", "GET", "/test/panic", "", "", "",
			answer{500, "text/plain", nil, "boom"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got struct{ body, ctype string }
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got.body, got.ctype = string(b), r.Header.Get("Content-Type")
				a := tc.answer
				if a.ctype != "" {
					w.Header().Set("Content-Type", a.ctype)
				}
				for _, h := range a.headers {
					k, v, _ := strings.Cut(h, ": ")
					w.Header().Add(k, v)
				}
				w.WriteHeader(a.status)
				io.WriteString(w, a.body)
			}))
			defer srv.Close()

			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for a := range strings.SplitSeq(tc.auth, "\n") {
				if a != "" {
					req.Header.Add("Authorization", a)
				}
			}
			var rep reports
			skip := func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/test/") }
			res, err := apitest.Client(&rep, nil, skip).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}

			// The check is invisible to both sides.
			if got.body != tc.body || got.ctype != tc.ctype {
				t.Errorf("server got body %q (%s), want %q (%s)", got.body, got.ctype, tc.body, tc.ctype)
			}
			if string(body) != tc.answer.body {
				t.Errorf("caller got body %q, want %q", body, tc.answer.body)
			}
			switch {
			case tc.want == "" && len(rep.msgs) > 0:
				t.Errorf("reported %q, want nothing", rep.msgs)
			case tc.want != "" && (len(rep.msgs) != 1 || !strings.Contains(rep.msgs[0], tc.want)):
				t.Errorf("reported %q, want one report containing %q", rep.msgs, tc.want)
			case tc.want != "" && !strings.Contains(rep.msgs[0], fmt.Sprintf("%s %s -> %d", tc.method, req.URL.Path, tc.answer.status)):
				t.Errorf("report %q does not name the method, path and status", rep.msgs[0])
			}
		})
	}
}

// TestCutAnswer: an answer cut short reaches the caller with its read error,
// unchecked, as it would without the check.
func TestCutAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.ReadAll(io.LimitReader(c, 1)) // the request has started
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"status\"")
	}()
	var rep reports
	res, err := apitest.Client(&rep, nil, nil).Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err == nil || string(body) != `{"status"` {
		t.Errorf("read %q, %v; want the partial body and an error", body, err)
	}
	if len(rep.msgs) > 0 {
		t.Errorf("reported %q for a cut answer", rep.msgs)
	}
}

// TestNew: the embedded document loads and describes what camd mounts;
// broken documents are refused with the reason.
func TestNew(t *testing.T) {
	v, err := apitest.Default()
	if err != nil {
		t.Fatalf("the embedded document: %v", err)
	}
	if ops := v.Operations(); len(ops) == 0 || !strings.Contains(strings.Join(ops, "\n"), "DELETE /admin/clients/:name") {
		t.Errorf("Operations() = %q, want Echo's path syntax", ops)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"not YAML", "openapi: [", "load OpenAPI document"},
		{"no info", "openapi: 3.0.3\npaths: {}\n", "invalid OpenAPI document"},
		{"dangling reference", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n        '200': {$ref: '#/components/responses/Nope'}\n", "Nope"},
		{"no Error schema", "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n", "no Error schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := apitest.New([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
