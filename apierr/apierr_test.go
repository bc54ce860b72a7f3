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

// TestFromStatus: an Echo error's status gets the code a client would
// handle it by, answered with that status; 429 is busy's 503. Only a
// status with no such code is internal.
func TestFromStatus(t *testing.T) {
	tests := []struct {
		status int
		want   Code
		answer int // the status the code is answered with
	}{
		{400, InvalidRequest, 400}, {401, MissingToken, 401}, {403, InsufficientScope, 403},
		{404, NotFound, 404}, {405, MethodNotAllowed, 405}, {408, RequestTimeout, 408},
		{413, BodyTooLarge, 413}, {415, UnsupportedMediaType, 415},
		{429, Busy, 503}, {503, Busy, 503},
		{418, Internal, 500}, {500, Internal, 500}, {502, Internal, 500},
	}
	for _, tt := range tests {
		got := FromStatus(tt.status)
		if got != tt.want {
			t.Errorf("FromStatus(%d) = %s, want %s", tt.status, got, tt.want)
		}
		if got.Status() != tt.answer {
			t.Errorf("FromStatus(%d) = %s, which answers %d, want %d", tt.status, got, got.Status(), tt.answer)
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
