// Package jsonbody reads a request body that must be one JSON object and
// turns every way it can be wrong into a 4xx with a message a client
// developer can act on.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/labstack/echo/v4"

	"camd/apierr"
)

// Object is a JSON object's members, each still encoded.
type Object map[string]json.RawMessage

// Read reads c's body as a JSON object.
//
//   - a non-empty body whose Content-Type is not application/json: 415;
//   - a body over the route's BodyLimit: 413 (from echo's limiter);
//   - anything but exactly one JSON object, or a key given twice: 400.
//
// An empty body reads as an empty object, so the handler reports the first
// missing field by name.
func Read(c echo.Context) (Object, error) {
	req := c.Request()
	if req.ContentLength != 0 {
		mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
		if err != nil || mt != echo.MIMEApplicationJSON {
			return nil, apierr.New(apierr.UnsupportedMediaType, "Content-Type must be application/json")
		}
	}
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return nil, apierr.New(apierr.BodyTooLarge, "request body too large") // from echo's body limiter
		}
		if IsTimeout(err) {
			// The server's ReadTimeout ended a body that stalled or never
			// ended (a chunked body without its last chunk).
			return nil, apierr.New(apierr.RequestTimeout, "request body not received in time")
		}
		return nil, apierr.New(apierr.InvalidBody, "could not read request body")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return Object{}, nil
	}
	obj, err := parse(raw)
	if err != nil {
		return nil, apierr.New(apierr.InvalidBody, err.Error())
	}
	return obj, nil
}

// parse decodes exactly one JSON object. Duplicate keys are refused: parsers
// disagree on which one wins, and such a disagreement between a client's
// checks and camd's is how requests get smuggled.
func parse(raw []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	// A number stays json.Number: as a float64, a top-level 1E1000 was a
	// conversion error, answered as "malformed JSON: json: cannot
	// unmarshal number 1E1000 into Go value of type float64".
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("request body must be a JSON object")
	}
	obj := Object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key := tok.(string) // inside an object the decoder only yields string keys
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, syntaxError(err)
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("duplicate key %s in request body", strconv.Quote(key))
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("malformed JSON: unexpected data after the object")
	}
	return obj, nil
}

// IsTimeout reports whether reading a body failed on the server's ReadTimeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("malformed JSON: unexpected end of body")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	return fmt.Errorf("malformed JSON: %s", err.Error())
}

// String returns member name as a string. It reports "missing NAME" when the
// member is absent and "NAME must be a string" for any other JSON type,
// including null.
func (o Object) String(name string) (string, error) {
	raw, ok := o[name]
	if !ok {
		return "", apierr.New(apierr.InvalidBody, "missing "+name)
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", apierr.New(apierr.InvalidBody, name+" must be a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", apierr.New(apierr.InvalidBody, name+" must be a string")
	}
	return s, nil
}

// MaxSafeInteger is 2^53-1, the largest integer that every JSON client holds
// exactly (RFC 7493 section 2.2; JavaScript's Number.MAX_SAFE_INTEGER).
const MaxSafeInteger = 1<<53 - 1

// Uint returns member name as an integer from 0 to MaxSafeInteger. Only a
// plain JSON integer literal counts: strings, fractions, exponents, negative
// and larger numbers each get their own message.
func (o Object) Uint(name string) (uint64, error) {
	raw, ok := o[name]
	if !ok {
		return 0, apierr.New(apierr.InvalidBody, "missing "+name)
	}
	bad := func(why string) error { return apierr.New(apierr.InvalidBody, name+" "+why) }
	s := string(raw)
	switch {
	case s == "" || s == "null" || s == "true" || s == "false" || s[0] == '[' || s[0] == '{':
		return 0, bad("must be a non-negative integer")
	case s[0] == '"':
		return 0, bad("must be a number, not a string")
	case s[0] == '-':
		return 0, bad("must not be negative")
	case bytes.ContainsAny(raw, ".eE"):
		return 0, bad("must be a whole number")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxSafeInteger {
		return 0, bad("must be at most " + strconv.FormatUint(MaxSafeInteger, 10))
	}
	return n, nil
}

// RequireJSON refuses with 415 any request whose Content-Type is not
// application/json, even with an empty body. State-changing admin routes use
// it: a browser resends cached Basic credentials with a cross-site form, but
// a form can only send form or text/plain bodies, and a cross-site
// application/json request needs a CORS preflight that camd never grants.
func RequireJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
		if err != nil || mt != echo.MIMEApplicationJSON {
			return apierr.New(apierr.UnsupportedMediaType, "Content-Type must be application/json")
		}
		return next(c)
	}
}
