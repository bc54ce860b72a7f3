package apierr

import (
	"errors"
	"net/http"
	"regexp"
	"testing"
)

// TestStatuses: every code has a client or server error status, and is
// spelled as codes are on the wire.
func TestStatuses(t *testing.T) {
	spelling := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, c := range Codes() {
		if s := c.Status(); s < 400 || s > 599 {
			t.Errorf("%s: status %d, want 4xx or 5xx", c, s)
		}
		if !spelling.MatchString(string(c)) {
			t.Errorf("code %q is not lower_snake_case", c)
		}
	}
	if got := Code("no_such_code").Status(); got != http.StatusInternalServerError {
		t.Errorf("unknown code: status %d, want 500", got)
	}
}

func TestFromStatus(t *testing.T) {
	tests := []struct {
		status int
		want   Code
	}{
		{400, InvalidRequest}, {401, MissingToken}, {404, NotFound}, {405, MethodNotAllowed},
		{408, RequestTimeout}, {413, BodyTooLarge}, {415, UnsupportedMediaType},
		{418, Internal}, {500, Internal}, {503, Internal},
	}
	for _, tt := range tests {
		got := FromStatus(tt.status)
		if got != tt.want {
			t.Errorf("FromStatus(%d) = %s, want %s", tt.status, got, tt.want)
		}
		// The code answers with the status it came from, but for the
		// statuses Echo is not known to send.
		if got != Internal && got.Status() != tt.status {
			t.Errorf("FromStatus(%d) = %s, which answers %d", tt.status, got, got.Status())
		}
	}
}

func TestWrap(t *testing.T) {
	cause := errors.New("disk on fire")
	err := error(Wrap(Internal, "could not save", cause))
	e, ok := As(err)
	if !ok || e.Code != Internal || e.Message != "could not save" || !errors.Is(err, cause) {
		t.Errorf("Wrap: %#v, want the code, the message and the cause", e)
	}
	if _, ok := As(cause); ok {
		t.Error("As found an *Error in a plain error")
	}
}
