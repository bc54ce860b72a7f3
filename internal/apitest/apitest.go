// Package apitest checks HTTP traffic against camd's OpenAPI document
// (modules/apidoc/openapi.yaml, the bytes camd embeds and serves) with
// kin-openapi's openapi3filter. The test suites send their requests through
// Client, so every request and answer they exchange with camd is checked,
// and a route the document lacks or an answer it does not describe fails
// the test that made it.
//
// Only tests import this package: kin-openapi must never be linked into the
// camd binary, whose size is budgeted for the cams.
package apitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"camd/modules/apidoc"
)

// Reporter is the part of testing.TB a check reports to.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// Validator checks exchanges against one OpenAPI document.
type Validator struct {
	doc     *openapi3.T
	router  routers.Router
	errType *openapi3.Schema
	checked atomic.Int64
}

var (
	defaultOnce sync.Once
	defaultV    *Validator
	defaultErr  error
)

// Default returns the validator for camd's embedded document, loaded once.
func Default() (*Validator, error) {
	defaultOnce.Do(func() { defaultV, defaultErr = New(apidoc.Document()) })
	return defaultV, defaultErr
}

// The admin page's HTML and CSS are checked like text/plain: as strings of
// the documented content type. kin-openapi knows no decoder for them.
func init() {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
}

// New loads and validates an OpenAPI document.
func New(spec []byte) (*Validator, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %w", err)
	}
	// The suites talk to 127.0.0.1 on ephemeral ports, which the servers of
	// the document (a cam's address) never match: route by path alone.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("OpenAPI router: %w", err)
	}
	var errRef *openapi3.SchemaRef
	if doc.Components != nil {
		errRef = doc.Components.Schemas["Error"]
	}
	if errRef == nil || errRef.Value == nil {
		return nil, errors.New("OpenAPI document has no Error schema")
	}
	return &Validator{doc: doc, router: router, errType: errRef.Value}, nil
}

// Checked returns how many exchanges have been checked.
func (v *Validator) Checked() int64 { return v.checked.Load() }

// Operations returns every operation of the document as "METHOD /path",
// with path parameters in Echo's spelling (":name"), sorted: the form of
// app.App.Routes, so the two lists compare directly.
func (v *Validator) Operations() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		echoPath := pathParam.ReplaceAllString(path, ":$1")
		for method := range item.Operations() {
			out = append(out, method+" "+echoPath)
		}
	}
	slices.Sort(out)
	return out
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// Check checks one exchange: the request as sent with its body, and the
// answer with its body. It returns nil when the document describes both,
// and otherwise an error that says which side is wrong and why.
//
// The document decides what a client may send; camd may refuse more (a
// duplicate key, "count": 1.0) but must refuse what the document refuses.
// So a request the document refuses is an error only if camd accepted it
// (a status below 400), and the answer must always be one the document
// lists for that operation and status, headers and body included.
func (v *Validator) Check(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) error {
	v.checked.Add(1)
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := v.router.FindRoute(vreq)
	if err != nil {
		return v.checkUnrouted(v.unrouted(vreq, err), req.Method, res, resBody)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // an undocumented status is an error
		AuthenticationFunc:    authenticate,
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)
	switch {
	case reqErr != nil && res.StatusCode < 400:
		return fmt.Errorf("camd accepted a request the document refuses: %w", reqErr)
	case reqErr == nil && res.StatusCode == http.StatusUnsupportedMediaType:
		return errors.New("camd answered 415 to a request whose Content-Type the document accepts")
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                opts,
	}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		return fmt.Errorf("answer not as documented: %w", err)
	}
	return nil
}

// unrouted tells a path the document lacks from a method it lacks. The
// legacy router looks an unmatched method's path up by its literal key, so
// for a templated path (/admin/clients/{name}) it says "path not found";
// the path is known if the request routes with any other method.
func (v *Validator) unrouted(req *http.Request, err error) error {
	var re *routers.RouteError
	if !errors.As(err, &re) || re.Reason != routers.ErrPathNotFound.Error() {
		return err
	}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		other := req.Clone(req.Context())
		other.Method = method
		if _, _, err := v.router.FindRoute(other); err == nil {
			return routers.ErrMethodNotAllowed
		}
	}
	return err
}

// checkUnrouted checks a request to a path or method the document does not
// have: camd must not serve it either, and answers 404, or 405 with Allow,
// in the one error shape. OPTIONS is the exception the document describes:
// Echo answers it on every path with 204 and Allow.
func (v *Validator) checkUnrouted(routeErr error, method string, res *http.Response, body []byte) error {
	var re *routers.RouteError
	if !errors.As(routeErr, &re) {
		return fmt.Errorf("OpenAPI router: %w", routeErr)
	}
	switch re.Reason {
	case routers.ErrPathNotFound.Error():
		if res.StatusCode != http.StatusNotFound {
			return fmt.Errorf("route missing from the document: camd answered %d, want it documented or 404", res.StatusCode)
		}
	case routers.ErrMethodNotAllowed.Error():
		if method == http.MethodOptions {
			if res.StatusCode != http.StatusNoContent || res.Header.Get("Allow") == "" {
				return fmt.Errorf("OPTIONS answered %d with Allow %q, want 204 with Allow", res.StatusCode, res.Header.Get("Allow"))
			}
			return nil
		}
		if res.StatusCode != http.StatusMethodNotAllowed {
			return fmt.Errorf("method missing from the document: camd answered %d, want it documented or 405", res.StatusCode)
		}
		if res.Header.Get("Allow") == "" {
			return errors.New("405 without Allow")
		}
	default:
		return fmt.Errorf("OpenAPI router: %w", routeErr)
	}
	if method == http.MethodHead {
		return nil // an answer to HEAD has no body to check
	}
	return v.checkError(res, body)
}

// checkError checks an answer against the document's Error schema.
func (v *Validator) checkError(res *http.Response, body []byte) error {
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("error answer with Content-Type %q, want application/json", res.Header.Get("Content-Type"))
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("error answer is not JSON: %w", err)
	}
	if err := v.errType.VisitJSON(value); err != nil {
		return fmt.Errorf("error answer does not match the Error schema: %w", err)
	}
	return nil
}

// authenticate stands in for camd's authentication, which the server does
// for real: it only checks that the request carries what the operation's
// security scheme needs, one Authorization header with that scheme and
// credentials of its form. A request without them is one the document
// refuses, so camd must refuse it too.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	values := in.RequestValidationInput.Request.Header.Values("Authorization")
	if len(values) != 1 {
		return in.NewError(fmt.Errorf("want one Authorization header, have %d", len(values)))
	}
	want := in.SecurityScheme.Scheme
	scheme, cred, _ := strings.Cut(values[0], " ")
	cred = strings.TrimLeft(cred, " ")
	if in.SecurityScheme.Type != "http" || !strings.EqualFold(scheme, want) || cred == "" {
		return in.NewError(fmt.Errorf("want Authorization: %s credentials", want))
	}
	if strings.EqualFold(want, "basic") {
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil || !bytes.Contains(raw, []byte(":")) {
			return in.NewError(errors.New("Basic credentials are not base64 of user:password"))
		}
	}
	return nil
}
