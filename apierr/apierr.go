// Package apierr is camd's one error vocabulary. Every JSON error camd
// answers is {"error": "<message for people>", "code": "<code>"}: the message
// may change between versions, the code does not, so clients switch on it.
// The codes, and the HTTP status each is answered with, are listed here and
// nowhere else in the code; the OpenAPI document lists the same set (a test
// holds them equal).
package apierr

import (
	"errors"
	"net/http"
)

// Code is a stable, machine-readable error code.
type Code string

// The codes. Add one only for a case a client would handle differently from
// every existing one.
const (
	InvalidRequest       Code = "invalid_request"        // malformed request: headers, path, query
	InvalidBody          Code = "invalid_body"           // a body that is not the JSON or form asked for
	UnsupportedMediaType Code = "unsupported_media_type" // a body of the wrong Content-Type
	BodyTooLarge         Code = "body_too_large"         // a body over the route's limit
	RequestTimeout       Code = "request_timeout"        // the body did not arrive in time
	MissingToken         Code = "missing_token"          // no bearer token where one is needed
	MissingCredentials   Code = "missing_credentials"    // no Basic credentials where they are needed
	InvalidToken         Code = "invalid_token"          // a token that is malformed, forged or not camd's
	TokenExpired         Code = "token_expired"          // a token past its exp: log in again
	TokenRevoked         Code = "token_revoked"          // a client token whose client was revoked or replaced
	PasswordChanged      Code = "password_changed"       // an owner token issued before the last password change
	SecretRotated        Code = "secret_rotated"         // a token signed with a signing secret since rotated
	InsufficientScope    Code = "insufficient_scope"     // a valid token without the scope the route needs
	InvalidCredentials   Code = "invalid_credentials"    // a wrong user or password
	LockedOut            Code = "locked_out"             // too many wrong passwords from this address
	TooManyConnections   Code = "too_many_connections"   // this address holds its share of connections
	Busy                 Code = "busy"                   // camd is at capacity: retry after Retry-After
	ClockUntrusted       Code = "clock_untrusted"        // no trusted time yet: retry after Retry-After
	CSRF                 Code = "csrf"                   // a form post that did not come from the admin page
	NotFound             Code = "not_found"              // no such route or resource
	MethodNotAllowed     Code = "method_not_allowed"     // the route exists, not for this method
	Conflict             Code = "conflict"               // the request clashes with the current state
	Internal             Code = "internal"               // camd failed; the log has the details
)

// statuses is the one map from a code to its HTTP status.
var statuses = map[Code]int{
	InvalidRequest:       http.StatusBadRequest,
	InvalidBody:          http.StatusBadRequest,
	UnsupportedMediaType: http.StatusUnsupportedMediaType,
	BodyTooLarge:         http.StatusRequestEntityTooLarge,
	RequestTimeout:       http.StatusRequestTimeout,
	MissingToken:         http.StatusUnauthorized,
	MissingCredentials:   http.StatusUnauthorized,
	InvalidToken:         http.StatusUnauthorized,
	TokenExpired:         http.StatusUnauthorized,
	TokenRevoked:         http.StatusUnauthorized,
	PasswordChanged:      http.StatusUnauthorized,
	SecretRotated:        http.StatusUnauthorized,
	InsufficientScope:    http.StatusForbidden,
	InvalidCredentials:   http.StatusUnauthorized,
	LockedOut:            http.StatusTooManyRequests,
	TooManyConnections:   http.StatusTooManyRequests,
	Busy:                 http.StatusServiceUnavailable,
	ClockUntrusted:       http.StatusServiceUnavailable,
	CSRF:                 http.StatusForbidden,
	NotFound:             http.StatusNotFound,
	MethodNotAllowed:     http.StatusMethodNotAllowed,
	Conflict:             http.StatusConflict,
	Internal:             http.StatusInternalServerError,
}

// Status is the HTTP status code c is answered with; 500 for a code not in
// the vocabulary.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Codes returns every code, for the OpenAPI document's test.
func Codes() []Code {
	out := make([]Code, 0, len(statuses))
	for c := range statuses {
		out = append(out, c)
	}
	return out
}

// Error is an error answered to the client as its Code and Message. Err,
// when set, is the cause, for the log only: it never reaches the client.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// New returns an error answered with code and msg.
func New(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Wrap returns an error answered with code and msg whose cause, for the
// log, is err.
func Wrap(code Code, msg string, err error) *Error { return &Error{Code: code, Message: msg, Err: err} }

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status e is answered with.
func (e *Error) Status() int { return e.Code.Status() }

// Body is the JSON error shape.
type Body struct {
	Error string `json:"error"`
	Code  Code   `json:"code"`
}

// FromStatus is the code for the status of an *echo.HTTPError, from Echo's
// router or middleware or a module, which carries no code of its own: the
// code a client would handle it by. A 403 is insufficient_scope, the one
// refusal of a valid credential a client can act on; 429 and 503 are busy,
// answered 503. Internal for any other status.
func FromStatus(status int) Code {
	switch status {
	case http.StatusBadRequest:
		return InvalidRequest
	case http.StatusUnauthorized:
		return MissingToken
	case http.StatusForbidden:
		return InsufficientScope
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return Busy
	case http.StatusNotFound:
		return NotFound
	case http.StatusMethodNotAllowed:
		return MethodNotAllowed
	case http.StatusRequestTimeout:
		return RequestTimeout
	case http.StatusRequestEntityTooLarge:
		return BodyTooLarge
	case http.StatusUnsupportedMediaType:
		return UnsupportedMediaType
	}
	return Internal
}

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
