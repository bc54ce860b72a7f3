package app_test

import (
	"net/http"
	"strings"
	"testing"
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
			}
		})
	}
}
