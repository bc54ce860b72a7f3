package jsonbody_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/jsonbody"

	"camd/apierr"
)

const mimeJSON = "application/json"

// newContext builds an echo context for a POST with body and content type
// ("" for none).
func newContext(body io.Reader, contentType string) echo.Context {
	req := httptest.NewRequest(http.MethodPost, "/", body)
	if contentType != "" {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	return echo.New().NewContext(req, httptest.NewRecorder())
}

// codeFor is the code jsonbody answers each of its statuses with.
var codeFor = map[int]apierr.Code{
	400: apierr.InvalidBody, 408: apierr.RequestTimeout,
	413: apierr.BodyTooLarge, 415: apierr.UnsupportedMediaType,
}

// httpError asserts err is an *apierr.Error answered with status code, with
// jsonbody's code for it, and, when msg is not empty, a message containing
// msg.
func httpError(t *testing.T, err error, code int, msg string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok {
		t.Fatalf("error = %v (%T), want *apierr.Error %d", err, err, code)
	}
	if e.Status() != code || e.Code != codeFor[code] {
		t.Errorf("status = %d, code %q (%v), want %d %q", e.Status(), e.Code, e.Message, code, codeFor[code])
	}
	got := e.Message
	if msg != "" && !strings.Contains(got, msg) {
		t.Errorf("message = %q, want it to contain %q", got, msg)
	}
}

func TestRead(t *testing.T) {
	const notObject = "request body must be a JSON object"
	tests := []struct {
		name     string
		body     string
		ctype    string
		wantCode int               // 0: success
		wantMsg  string            // part of the message on failure
		want     map[string]string // members, still encoded, on success
	}{
		// Content-Type.
		{name: "body without content type", body: `{"a":1}`, wantCode: 415, wantMsg: "Content-Type must be application/json"},
		{name: "text/plain", body: `{"a":1}`, ctype: "text/plain", wantCode: 415},
		{name: "form", body: `a=1`, ctype: "application/x-www-form-urlencoded", wantCode: 415},
		{name: "json suffix type", body: `{"a":1}`, ctype: "application/problem+json", wantCode: 415},
		{name: "json prefix type", body: `{"a":1}`, ctype: "application/jsonx", wantCode: 415},
		{name: "unparsable content type", body: `{"a":1}`, ctype: "/json", wantCode: 415},
		{name: "whitespace body without content type", body: " \n", wantCode: 415},
		{name: "json", body: `{"a":1}`, ctype: mimeJSON, want: map[string]string{"a": "1"}},
		{name: "json with charset", body: `{"a":1}`, ctype: "application/json; charset=utf-8", want: map[string]string{"a": "1"}},
		{name: "json in upper case", body: `{"a":1}`, ctype: "Application/JSON", want: map[string]string{"a": "1"}},

		// Empty bodies read as an empty object.
		{name: "empty body without content type", body: "", want: map[string]string{}},
		{name: "empty body with content type", body: "", ctype: mimeJSON, want: map[string]string{}},
		{name: "whitespace body", body: " \r\n\t ", ctype: mimeJSON, want: map[string]string{}},
		{name: "empty object", body: `{}`, ctype: mimeJSON, want: map[string]string{}},

		// Objects.
		{
			name:  "members kept encoded",
			body:  ` { "user" : "owner", "count": 5 , "nested": {"x": [1, 2]}, "n": null } ` + "\n",
			ctype: mimeJSON,
			want:  map[string]string{"user": `"owner"`, "count": "5", "nested": `{"x": [1, 2]}`, "n": "null"},
		},
		{name: "escaped key", body: `{"\u0061b":1}`, ctype: mimeJSON, want: map[string]string{"ab": "1"}},
		{name: "empty key", body: `{"":1}`, ctype: mimeJSON, want: map[string]string{"": "1"}},
		{name: "nested duplicate keys are the value's business", body: `{"a":{"b":1,"b":2}}`, ctype: mimeJSON, want: map[string]string{"a": `{"b":1,"b":2}`}},

		// Malformed.
		{name: "truncated object", body: `{"a":1`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "truncated key", body: `{"a`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "only an open brace", body: `{`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "missing value", body: `{"a":}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "missing colon", body: `{"a" 1}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "missing comma", body: `{"a":1 "b":2}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "trailing comma", body: `{"a":1,}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "single quotes", body: `{'a':1}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "bare key", body: `{a:1}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "number key", body: `{1:1}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "mismatched close", body: `{]`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "bad literal", body: `{"a":nul}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "byte order mark", body: "\uFEFF{}", ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "lone close brace", body: `}`, ctype: mimeJSON, wantCode: 400, wantMsg: "malformed JSON"},

		// Not an object.
		{name: "array", body: `[{"a":1}]`, ctype: mimeJSON, wantCode: 400, wantMsg: notObject},
		{name: "string", body: `"a"`, ctype: mimeJSON, wantCode: 400, wantMsg: notObject},
		{name: "number", body: `1`, ctype: mimeJSON, wantCode: 400, wantMsg: notObject},
		{name: "null", body: `null`, ctype: mimeJSON, wantCode: 400, wantMsg: notObject},
		{name: "true", body: `true`, ctype: mimeJSON, wantCode: 400, wantMsg: notObject},

		// Duplicate keys.
		{name: "duplicate key", body: `{"count":1,"count":2}`, ctype: mimeJSON, wantCode: 400, wantMsg: `duplicate key "count"`},
		{name: "duplicate key spelled with an escape", body: `{"count":1,"co\u0075nt":2}`, ctype: mimeJSON, wantCode: 400, wantMsg: `duplicate key "count"`},
		{name: "duplicate key with quotes in it", body: `{"a\"b":1,"a\"b":2}`, ctype: mimeJSON, wantCode: 400, wantMsg: `duplicate key "a\"b"`},
		{name: "duplicate key of different types", body: `{"a":"x","b":1,"a":null}`, ctype: mimeJSON, wantCode: 400, wantMsg: `duplicate key "a"`},

		// Trailing data.
		{name: "trailing garbage", body: `{"a":1} x`, ctype: mimeJSON, wantCode: 400, wantMsg: "unexpected data after the object"},
		{name: "two objects", body: `{}{}`, ctype: mimeJSON, wantCode: 400, wantMsg: "unexpected data after the object"},
		{name: "two objects on two lines", body: "{}\n{}\n", ctype: mimeJSON, wantCode: 400, wantMsg: "unexpected data after the object"},
		{name: "trailing close bracket", body: `{}]`, ctype: mimeJSON, wantCode: 400},
		{name: "trailing NUL", body: "{}\x00", ctype: mimeJSON, wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := jsonbody.Read(newContext(strings.NewReader(tt.body), tt.ctype))
			if tt.wantCode != 0 {
				httpError(t, err, tt.wantCode, tt.wantMsg)
				if obj != nil {
					t.Errorf("Read returned %v with an error", obj)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if obj == nil {
				t.Fatal("Read returned a nil Object")
			}
			if len(obj) != len(tt.want) {
				t.Errorf("Read = %v, want %v", obj, tt.want)
			}
			for k, v := range tt.want {
				if got, ok := obj[k]; !ok || string(got) != v {
					t.Errorf("member %q = %q (present %v), want %q", k, got, ok, v)
				}
			}
		})
	}
}

func TestReadDeepNesting(t *testing.T) {
	tests := []struct {
		name  string
		depth int
	}{
		{"1000 arrays", 1000},
		{"1000 objects", -1000},
		{"beyond the decoder's limit", 20000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var value string
			if tt.depth > 0 {
				value = strings.Repeat("[", tt.depth) + strings.Repeat("]", tt.depth)
			} else {
				value = strings.Repeat(`{"a":`, -tt.depth) + "1" + strings.Repeat("}", -tt.depth)
			}
			body := `{"deep":` + value + `}`
			obj, err := jsonbody.Read(newContext(strings.NewReader(body), mimeJSON))
			if err != nil {
				httpError(t, err, 400, "")
				return
			}
			if string(obj["deep"]) != value {
				t.Errorf("member deep has %d bytes, want %d", len(obj["deep"]), len(value))
			}
		})
	}
}

// failingReader fails like a connection dropped mid-body.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestReadBodyError(t *testing.T) {
	// httptest gives a reader of unknown length ContentLength -1.
	_, err := jsonbody.Read(newContext(failingReader{}, mimeJSON))
	httpError(t, err, 400, "could not read request body")
}

// bodyOfSize returns a JSON object of exactly n bytes.
func bodyOfSize(n int) string {
	const frame = `{"pad":""}`
	return `{"pad":"` + strings.Repeat("x", n-len(frame)) + `"}`
}

func TestReadBodyLimit(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{name: "well under", size: 100, want: http.StatusOK},
		// gommon's "4K" is 4000 bytes (decimal kilo), not 4096.
		{name: "at the limit", size: 4000, want: http.StatusOK},
		{name: "at the limit, chunked", size: 4000, chunked: true, want: http.StatusOK},
		{name: "one over", size: 4001, want: http.StatusRequestEntityTooLarge},
		{name: "one over, chunked", size: 4001, chunked: true, want: http.StatusRequestEntityTooLarge},
		{name: "5000 bytes", size: 5000, want: http.StatusRequestEntityTooLarge},
		{name: "5000 bytes, chunked", size: 5000, chunked: true, want: http.StatusRequestEntityTooLarge},
		{name: "1 MiB, chunked", size: 1 << 20, chunked: true, want: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := echo.New()
			var members int
			e.POST("/", func(c echo.Context) error {
				obj, err := jsonbody.Read(c)
				if e, ok := apierr.As(err); ok {
					return c.JSON(e.Status(), apierr.Body{Error: e.Message, Code: e.Code}) // as camd's error handler does
				}
				if err != nil {
					return err
				}
				members = len(obj)
				return c.NoContent(http.StatusOK)
			}, middleware.BodyLimit("4K"))

			body := bodyOfSize(tt.size)
			if len(body) != tt.size {
				t.Fatalf("test setup: body is %d bytes, want %d", len(body), tt.size)
			}
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set(echo.HeaderContentType, mimeJSON)
			if tt.chunked {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusOK && members != 1 {
				t.Errorf("handler saw %d members, want 1", members)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name    string
		raw     *string // nil: member missing
		want    string
		wantMsg string // "" for success
	}{
		{name: "plain", raw: ptr(`"owner"`), want: "owner"},
		{name: "empty", raw: ptr(`""`), want: ""},
		{name: "escapes", raw: ptr(`"a\"b\\c\u00e9\n"`), want: "a\"b\\cé\n"},
		{name: "missing", wantMsg: "missing user"},
		{name: "null", raw: ptr(`null`), wantMsg: "user must be a string"},
		{name: "number", raw: ptr(`1`), wantMsg: "user must be a string"},
		{name: "true", raw: ptr(`true`), wantMsg: "user must be a string"},
		{name: "array", raw: ptr(`["owner"]`), wantMsg: "user must be a string"},
		{name: "object", raw: ptr(`{"user":"owner"}`), wantMsg: "user must be a string"},
		{name: "empty raw", raw: ptr(``), wantMsg: "user must be a string"},
		{name: "unterminated", raw: ptr(`"owner`), wantMsg: "user must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := jsonbody.Object{"other": json.RawMessage(`"x"`)}
			if tt.raw != nil {
				obj["user"] = json.RawMessage(*tt.raw)
			}
			got, err := obj.String("user")
			if tt.wantMsg != "" {
				httpError(t, err, 400, "")
				if msg := err.(*apierr.Error).Message; msg != tt.wantMsg {
					t.Errorf("message = %q, want %q", msg, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("String: %v", err)
			}
			if got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUint(t *testing.T) {
	const (
		notInteger  = "count must be a non-negative integer"
		notString   = "count must be a number, not a string"
		negative    = "count must not be negative"
		notWhole    = "count must be a whole number"
		tooLarge    = "count must be at most 9007199254740991"
		missing     = "missing count"
		maxSafeText = "9007199254740991"
	)
	tests := []struct {
		raw     *string // nil: member missing
		want    uint64
		wantMsg string // "" for success
	}{
		{raw: ptr("0"), want: 0},
		{raw: ptr("1"), want: 1},
		{raw: ptr("42"), want: 42},
		{raw: ptr(maxSafeText), want: jsonbody.MaxSafeInteger},
		{raw: ptr("9007199254740992"), wantMsg: tooLarge},
		{raw: ptr("18446744073709551615"), wantMsg: tooLarge},
		{raw: ptr("18446744073709551616"), wantMsg: tooLarge},
		{raw: ptr("99999999999999999999999999"), wantMsg: tooLarge},
		{raw: ptr("1e3"), wantMsg: notWhole},
		{raw: ptr("1E3"), wantMsg: notWhole},
		{raw: ptr("1.0"), wantMsg: notWhole},
		{raw: ptr("1.5"), wantMsg: notWhole},
		{raw: ptr("0.0"), wantMsg: notWhole},
		{raw: ptr("-1"), wantMsg: negative},
		{raw: ptr("-0"), wantMsg: negative},
		{raw: ptr("-1.5"), wantMsg: negative},
		{raw: ptr(`"3"`), wantMsg: notString},
		{raw: ptr(`""`), wantMsg: notString},
		{raw: ptr("null"), wantMsg: notInteger},
		{raw: ptr("true"), wantMsg: notInteger},
		{raw: ptr("false"), wantMsg: notInteger},
		{raw: ptr("[]"), wantMsg: notInteger},
		{raw: ptr("[1]"), wantMsg: notInteger},
		{raw: ptr("{}"), wantMsg: notInteger},
		{raw: ptr(""), wantMsg: notInteger},
		{raw: nil, wantMsg: missing},
	}
	for _, tt := range tests {
		name := "missing"
		if tt.raw != nil {
			name = *tt.raw
		}
		t.Run(name, func(t *testing.T) {
			obj := jsonbody.Object{"other": json.RawMessage("1")}
			if tt.raw != nil {
				obj["count"] = json.RawMessage(*tt.raw)
			}
			got, err := obj.Uint("count")
			if tt.wantMsg != "" {
				httpError(t, err, 400, "")
				if msg := err.(*apierr.Error).Message; msg != tt.wantMsg {
					t.Errorf("message = %q, want %q", msg, tt.wantMsg)
				}
				if got != 0 {
					t.Errorf("Uint = %d with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Uint: %v", err)
			}
			if got != tt.want {
				t.Errorf("Uint = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestReadThenAccessors runs members through Read first, so they carry
// whatever spacing the decoder leaves around them.
func TestReadThenAccessors(t *testing.T) {
	body := "{ \"count\" :\t9007199254740991 ,\n \"user\" : \"owner\" }"
	obj, err := jsonbody.Read(newContext(strings.NewReader(body), mimeJSON))
	if err != nil {
		t.Fatal(err)
	}
	n, err := obj.Uint("count")
	if err != nil || n != jsonbody.MaxSafeInteger {
		t.Errorf("Uint = %d, %v; want %d", n, err, uint64(jsonbody.MaxSafeInteger))
	}
	s, err := obj.String("user")
	if err != nil || s != "owner" {
		t.Errorf("String = %q, %v; want owner", s, err)
	}
}

func ptr(s string) *string { return &s }

// FuzzRead checks that no body makes Read panic or answer anything but an
// object or a 4xx. `go test` runs the seeds; `go test -fuzz FuzzRead` explores.
func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		"", "{}", `{"a":1}`, `{"a":1,"a":2}`, `[1]`, `{"a":`, `{}{}`, `{"a":[[[[]]]]}`,
		`{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"count":-0}`, `{"":{"":{"":null}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		obj, err := jsonbody.Read(newContext(strings.NewReader(body), mimeJSON))
		if err != nil {
			if e, ok := apierr.As(err); !ok || e.Status() < 400 || e.Status() > 499 || codeFor[e.Status()] != e.Code {
				t.Fatalf("Read(%q) = %v, want a 4xx *apierr.Error with jsonbody's code for it", body, err)
			}
			return
		}
		if obj == nil {
			t.Fatalf("Read(%q) returned nil without an error", body)
		}
		// Whatever Read accepted is valid JSON, member by member.
		for k, v := range obj {
			if !json.Valid(v) {
				t.Errorf("member %q = %q is not valid JSON", k, v)
			}
		}
	})
}
