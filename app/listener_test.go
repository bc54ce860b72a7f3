package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

func TestRewriteCanned(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		status int    // 0: left alone
		msg    string // the JSON error
	}{
		{"431", "HTTP/1.1 431 Request Header Fields Too Large" + cannedHeaders + "431 Request Header Fields Too Large",
			431, "request header fields too large"},
		{"400 with detail", "HTTP/1.1 400 Bad Request: missing required Host header" + cannedHeaders + "400 Bad Request: missing required Host header",
			400, "bad request: missing required Host header"},
		{"501", "HTTP/1.1 501 Not Implemented" + cannedHeaders + "Unsupported transfer encoding", 501, "not implemented: unsupported transfer encoding"},
		// A handler's answer always has a Date header, even one that looks
		// like the canned answer otherwise.
		{"handler text answer", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: Sat, 28 Nov 2026 18:00:00 GMT\r\nContent-Length: 3\r\n\r\nbad", 0, ""},
		{"JSON answer", "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nDate: Sat, 28 Nov 2026 18:00:00 GMT\r\n\r\n{}", 0, ""},
		{"success", "HTTP/1.1 200 OK" + cannedHeaders + "200 OK", 0, ""},
		{"body on two lines", "HTTP/1.1 400 Bad Request" + cannedHeaders + "400\r\nBad Request", 0, ""},
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\n", 0, ""},
		{"body bytes", `{"count":1}`, 0, ""},
		{"empty", "", 0, ""},
		{"no reason", "HTTP/1.1 400 " + cannedHeaders + "400 ", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := rewriteCanned([]byte(tc.in))
			if ok != (tc.status != 0) {
				t.Fatalf("rewritten %v, want %v: %q", ok, tc.status != 0, out)
			}
			if !ok {
				return
			}
			res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
			if err != nil {
				t.Fatalf("not an HTTP response: %v: %q", err, out)
			}
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body not JSON: %v: %q", err, body)
			}
			if res.StatusCode != tc.status || e.Error != tc.msg || !res.Close ||
				res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %d %q close=%v %q, want %d %q, closing, JSON",
					res.StatusCode, e.Error, res.Close, res.Header.Get("Content-Type"), tc.status, tc.msg)
			}
		})
	}
}
