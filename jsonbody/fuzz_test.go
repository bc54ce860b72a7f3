package jsonbody_test

// FuzzMembers carries FuzzRead (in jsonbody_test.go) on to what handlers do
// with a body: read members with String and Uint. `go test` replays the
// seeds below and testdata/fuzz; the long run is
//
//	go test ./jsonbody -run '^$' -fuzz '^FuzzMembers$' -fuzztime 10m -parallel 1

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"camd/jsonbody"

	"camd/apierr"
)

// plainUint is the only form of number Uint may take: a JSON integer
// literal without sign, fraction or exponent.
var plainUint = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// FuzzMembers: Read agrees with encoding/json on which bodies are objects
// (refusing in addition only duplicate keys), and on every member's value;
// String accepts exactly the JSON strings, with their decoded value; Uint
// accepts exactly the plain integer literals up to 2^53-1, with their value;
// every refusal is a 400.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{"count":3,"user":"owner","pass":"x"}`,
		`{"count":0}`, `{"count":9007199254740991}`, `{"count":9007199254740992}`,
		`{"count":18446744073709551615}`, `{"count":18446744073709551616}`,
		`{"count":-0}`, `{"count":1.0}`, `{"count":1e3}`, `{"count":1E3}`, `{"count":"3"}`,
		`{"count":null}`, `{"count":true}`, `{"count":[3]}`, `{"count":{"n":3}}`,
		`{"user":"\u006fwner"}`, `{"user":"\ud800"}`, "{\"user\":\"\xff\"}", `{"user":""}`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"A":1,"a":2}`, `{"":0}`,
		` {"a" : [ 1 , { } ] } `, "{}\n", "null", `[]`, `"x"`, ``, `{"a":1}x`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		obj, err := jsonbody.Read(newContext(strings.NewReader(body), mimeJSON))
		std, stdErr := stdObject(body)
		if err != nil {
			checkStatus(t, err, http.StatusBadRequest)
			// Messages are camd's, not encoding/json's Go internals.
			if strings.Contains(err.Error(), "Go value") {
				t.Fatalf("Read(%q) = %v", body, err)
			}
			// What encoding/json takes as an object, Read refuses only
			// for a key given twice.
			if stdErr == nil && !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("Read(%q) = %v; encoding/json reads it as %v", body, err, std)
			}
			return
		}
		if len(bytes.TrimSpace([]byte(body))) == 0 {
			if len(obj) != 0 {
				t.Fatalf("Read(%q) = %v, want an empty object", body, obj)
			}
			return
		}
		if stdErr != nil {
			t.Fatalf("Read(%q) accepted what encoding/json refuses: %v", body, stdErr)
		}
		// No duplicates, so both hold the same members.
		if len(obj) != len(std) {
			t.Fatalf("Read(%q) has %d members, encoding/json %d", body, len(obj), len(std))
		}
		for k, raw := range obj {
			want, ok := std[k]
			if !ok {
				t.Fatalf("Read(%q): member %q unknown to encoding/json", body, k)
			}
			got, err := stdDecode(raw)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Read(%q): member %q = %s, encoding/json %#v", body, k, raw, want)
			}
			checkString(t, obj, k, want)
			checkUint(t, obj, k, raw)
		}
		// An absent member is a 400 too.
		if _, there := obj["\x00absent"]; !there {
			_, err := obj.String("\x00absent")
			checkStatus(t, err, http.StatusBadRequest)
			_, err = obj.Uint("\x00absent")
			checkStatus(t, err, http.StatusBadRequest)
		}
	})
}

// stdObject is encoding/json's reading of body as an object. Numbers stay
// json.Number: Read keeps members as they were written, so 1E700, which
// overflows a float64, is as much a member as 1.
func stdObject(body string) (map[string]any, error) {
	v, err := stdDecode([]byte(body))
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	return m, nil
}

// stdDecode decodes exactly one JSON value, keeping numbers as json.Number.
func stdDecode(raw []byte) (any, error) {
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// checkString: String(k) succeeds exactly for a JSON string, with its value.
func checkString(t *testing.T, obj jsonbody.Object, k string, want any) {
	t.Helper()
	s, err := obj.String(k)
	wantS, isString := want.(string)
	switch {
	case isString && (err != nil || s != wantS):
		t.Fatalf("String(%q) of %s = %q, %v; want %q", k, obj[k], s, err, wantS)
	case !isString:
		checkStatus(t, err, http.StatusBadRequest)
	}
}

// checkUint: Uint(k) succeeds exactly for a plain integer literal up to
// MaxSafeInteger, with its value.
func checkUint(t *testing.T, obj jsonbody.Object, k string, raw json.RawMessage) {
	t.Helper()
	n, err := obj.Uint(k)
	want, perr := strconv.ParseUint(string(raw), 10, 64)
	if plainUint.Match(raw) && perr == nil && want <= jsonbody.MaxSafeInteger {
		if err != nil || n != want {
			t.Fatalf("Uint(%q) of %s = %d, %v; want %d", k, raw, n, err, want)
		}
		return
	}
	checkStatus(t, err, http.StatusBadRequest)
}

// checkStatus fails unless err is an *apierr.Error answered with code, with
// jsonbody's code for it (codeFor), and a message.
func checkStatus(t *testing.T, err error, code int) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Status() != code || e.Code != codeFor[code] {
		t.Fatalf("error %v (%T), want an *apierr.Error %d", err, err, code)
	}
	if msg := e.Message; msg == "" {
		t.Fatalf("HTTP error %d without a message", code)
	}
}

// TestFuzzFindings keeps what FuzzMembers found (the input is also in
// testdata/fuzz/FuzzMembers): a body that is one huge number was refused
// with encoding/json's message about a Go float64, not as a non-object.
func TestFuzzFindings(t *testing.T) {
	for _, body := range []string{"1E1000", "-1e400", "1", "[1E1000]"} {
		_, err := jsonbody.Read(newContext(strings.NewReader(body), mimeJSON))
		httpError(t, err, http.StatusBadRequest, "request body must be a JSON object")
	}
	// Inside an object such a number is a member like any other, which
	// Uint then refuses by name.
	obj, err := jsonbody.Read(newContext(strings.NewReader(`{"count":1E1000}`), mimeJSON))
	if err != nil {
		t.Fatal(err)
	}
	_, err = obj.Uint("count")
	httpError(t, err, http.StatusBadRequest, "count must be a whole number")
}
