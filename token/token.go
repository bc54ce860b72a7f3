// Package token owns camd's access token format: HS256 JWTs (RFC 7519) with
// sub, iat, exp, iss and aud, signed with the cam's secret. Login issues them
// and the bearer middleware verifies them; nothing else knows the format.
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"camd/platform/clock"
)

// Issuer and Audience are written into every token and required on every
// token presented, so a JWT minted for something else with the same key is
// never accepted here (RFC 8725 section 3.9).
const (
	Issuer   = "camd"
	Audience = "camd-api"
)

// Algorithm is the only signing algorithm camd issues or accepts.
const Algorithm = "HS256"

// DefaultTTL is the lifetime of a login token unless configured otherwise.
const DefaultTTL = time.Hour

// Claims are the claims camd puts in a token. Owner tokens have sub
// "owner" and every scope; client tokens have sub "client:NAME", the
// client's id as jti, and the scopes granted to it.
type Claims struct {
	jwt.RegisteredClaims
	// Scope is the space-separated list of scopes (RFC 8693 section 4.2).
	Scope string `json:"scope,omitempty"`
	// PasswordVersion is, in owner tokens, the version of the owner
	// password they were issued under; a password change refuses them.
	PasswordVersion string `json:"pwv,omitempty"`
}

// OwnerSubject is the sub of the owner's tokens.
const OwnerSubject = "owner"

// ClientPrefix starts the sub of a client credential: "client:porch-esp32".
const ClientPrefix = "client:"

// ClientTTL is a client credential's lifetime. Clients are revoked one by
// one, not by expiry; exp is still set because every token must carry one.
const ClientTTL = 10 * 365 * 24 * time.Hour

// Client returns the client name of a client token, and false for any other.
func (c *Claims) Client() (string, bool) {
	return strings.CutPrefix(c.Subject, ClientPrefix)
}

// HasScope reports whether the token grants scope. The owner has them all.
func (c *Claims) HasScope(scope string) bool {
	if c.Subject == OwnerSubject {
		return true
	}
	return slices.Contains(strings.Fields(c.Scope), scope)
}

// Validator decides whether a correctly signed, unexpired token is still
// honoured: its client not revoked, or it was issued after the last password
// change. An error refuses it as invalid_token.
type Validator func(*Claims) error

// Authority issues and verifies tokens with one key, which Rotate can swap.
type Authority struct {
	// key holds the signing key, a []byte, already in an interface: the
	// parser's key function returns it as is, where returning a []byte
	// would box (allocate) it on every request.
	key      atomic.Value
	ttl      time.Duration
	clock    clock.Clock
	parser   *jwt.Parser
	validate Validator
	onUse    func(echo.Context, *Claims)
}

// MinKeySize is the shortest key accepted: RFC 7518 section 3.2 requires an
// HS256 key of at least 256 bits.
const MinKeySize = 32

// NewAuthority returns an Authority signing with key, issuing tokens that live
// for ttl, reading the time from clk.
func NewAuthority(key []byte, ttl time.Duration, clk clock.Clock) (*Authority, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("token: key is %d bytes, need at least %d", len(key), MinKeySize)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("token: ttl %v must be positive", ttl)
	}
	a := &Authority{
		ttl:   ttl,
		clock: clk,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}), // pin HS256: no "none", no RS/ES key confusion
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(), // an iat in the future means a forged or misclocked token
			jwt.WithIssuer(Issuer),
			jwt.WithAudience(Audience),
			jwt.WithTimeFunc(clk.Now),
			jwt.WithStrictDecoding(),
		),
	}
	a.key.Store(key)
	return a, nil
}

// SetKey replaces the signing key: every token signed with the old one is
// refused from the next request on.
func (a *Authority) SetKey(key []byte) error {
	if len(key) < MinKeySize {
		return fmt.Errorf("token: key is %d bytes, need at least %d", len(key), MinKeySize)
	}
	a.key.Store(key)
	return nil
}

// SetValidator installs the check run on every verified token. Call it
// before serving.
func (a *Authority) SetValidator(v Validator) { a.validate = v }

// SetOnUse installs a function the bearer middleware calls for every
// admitted request, such as recording when a client was last seen. Call it
// before serving.
func (a *Authority) SetOnUse(f func(echo.Context, *Claims)) { a.onUse = f }

// TTL returns the lifetime of issued tokens.
func (a *Authority) TTL() time.Duration { return a.ttl }

// Issue returns a token for subject with the login lifetime and no scope
// claims; owner logins use IssueOwner, clients IssueClient.
func (a *Authority) Issue(subject string) (string, error) {
	if subject == "" {
		return "", errors.New("token: empty subject")
	}
	return a.sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: subject}}, a.ttl)
}

// IssueOwner returns an owner token bound to the current password version.
func (a *Authority) IssueOwner(passwordVersion string) (string, error) {
	return a.sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: OwnerSubject}, PasswordVersion: passwordVersion}, a.ttl)
}

// IssueClient returns a client credential for the client named name, with
// id as its jti, granting scopes.
func (a *Authority) IssueClient(name, id string, scopes []string) (string, error) {
	if name == "" || id == "" {
		return "", errors.New("token: client without name or id")
	}
	return a.sign(Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: ClientPrefix + name, ID: id}, Scope: strings.Join(scopes, " ")}, ClientTTL)
}

// sign fills in the claims every token has and signs.
func (a *Authority) sign(claims Claims, ttl time.Duration) (string, error) {
	now := a.clock.Now().Truncate(time.Second)
	claims.Issuer = Issuer
	claims.Audience = jwt.ClaimStrings{Audience}
	claims.IssuedAt = jwt.NewNumericDate(now)
	claims.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.key.Load())
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return signed, nil
}

// ErrInvalid wraps every reason a presented token is refused.
var ErrInvalid = errors.New("invalid token")

// Verify checks a presented token and returns its claims.
func (a *Authority) Verify(raw string) (*Claims, error) {
	// Decoded into wireClaims, not Claims: see there. The Claims returned
	// shares the wire's allocation, whose dates it points to anyway.
	v := new(struct {
		wire   wireClaims
		claims Claims
	})
	_, err := a.parser.ParseWithClaims(raw, &v.wire, a.keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	claims := &v.claims
	v.wire.fill(claims)
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	if a.validate != nil {
		if err := a.validate(claims); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return claims, nil
}

var (
	errCritical     = errors.New("critical header extensions are not supported")
	errDateInString = errors.New("a NumericDate must be a JSON number, not a string")
)

func (a *Authority) keyFunc(t *jwt.Token) (any, error) {
	// WithValidMethods already refuses other algorithms; checking the
	// concrete method too means a future parser option can't undo the pin.
	if t.Method != jwt.SigningMethodHS256 {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	// RFC 7515 section 4.1.11: a JWS whose crit names an extension the
	// recipient does not understand is invalid. camd understands none, and
	// golang-jwt ignores crit.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritical
	}
	return a.key.Load(), nil
}

// wireClaims is what Verify decodes a token's payload into: the members of
// Claims under the same JSON names, in types that cost fewer allocations per
// request than decoding into Claims itself. jwt.NumericDate and
// jwt.ClaimStrings decode through a nested json.Unmarshal each, every date
// is a pointer to one more allocation, and the Claims's embedded struct makes
// encoding/json grow its error-context stack for every member. The types
// here decode the forms camd issues directly and hand everything else to
// the decoder Claims would have used, so that what is accepted and refused,
// and as what, does not change, with one exception: a date in a JSON string,
// which jwt.NumericDate accepts, is refused (see numericDate).
type wireClaims struct {
	Issuer          claimString `json:"iss"`
	Subject         claimString `json:"sub"`
	Audience        audience    `json:"aud"`
	ExpiresAt       numericDate `json:"exp"`
	NotBefore       numericDate `json:"nbf"`
	IssuedAt        numericDate `json:"iat"`
	ID              string      `json:"jti"`
	Scope           string      `json:"scope"`
	PasswordVersion string      `json:"pwv"`
}

// Interface guard: the parser validates wireClaims through these getters,
// which answer as RegisteredClaims's do.
var _ jwt.Claims = (*wireClaims)(nil)

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return w.ExpiresAt.ptr(), nil }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return w.NotBefore.ptr(), nil }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return w.IssuedAt.ptr(), nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error)       { return w.Audience.list, nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return string(w.Issuer), nil }
func (w *wireClaims) GetSubject() (string, error)                  { return string(w.Subject), nil }

// fill sets c to the decoded claims. Its dates point into w.
func (w *wireClaims) fill(c *Claims) {
	*c = Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    string(w.Issuer),
			Subject:   string(w.Subject),
			Audience:  w.Audience.list,
			ExpiresAt: w.ExpiresAt.ptr(),
			NotBefore: w.NotBefore.ptr(),
			IssuedAt:  w.IssuedAt.ptr(),
			ID:        w.ID,
		},
		Scope:           w.Scope,
		PasswordVersion: w.PasswordVersion,
	}
}

// claimString decodes like string, without allocating for the values every
// owner token carries: iss "camd" and sub "owner".
type claimString string

func (s *claimString) UnmarshalJSON(b []byte) error {
	p, ok := plainJSONString(b)
	if !ok {
		// Escapes, null, a non-string: as encoding/json decodes a string.
		return json.Unmarshal(b, (*string)(s))
	}
	switch string(p) {
	case Issuer:
		*s = Issuer
	case OwnerSubject:
		*s = OwnerSubject
	default:
		*s = claimString(p)
	}
	return nil
}

// numericDate decodes like *jwt.NumericDate, held by value, except that it
// refuses a number in a string ("exp":"1700000000"), which jwt.NumericDate
// reads through json.Number: RFC 7519 section 2 makes a NumericDate a JSON
// numeric value, and camd never issues one as a string.
type numericDate struct {
	date jwt.NumericDate
	set  bool // false: absent or null, as a nil *jwt.NumericDate
}

func (n *numericDate) ptr() *jwt.NumericDate {
	if !n.set {
		return nil
	}
	return &n.date
}

func (n *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		// encoding/json sets a pointer member to nil for null.
		*n = numericDate{}
		return nil
	}
	if len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9') {
		// A JSON number literal (encoding/json has checked its syntax):
		// parsed as jwt.NumericDate does, through json.Number.Float64,
		// which is strconv.ParseFloat, then as its
		// newNumericDateFromSeconds.
		if f, err := strconv.ParseFloat(string(b), 64); err == nil {
			round, frac := math.Modf(f)
			n.date = jwt.NumericDate{Time: time.Unix(int64(round), int64(frac*1e9)).Truncate(jwt.TimePrecision)}
			n.set = true
			return nil
		}
	}
	if len(b) > 0 && b[0] == '"' {
		return errDateInString
	}
	// Anything else (not a number at all, out of range) is
	// jwt.NumericDate's to refuse.
	if err := n.date.UnmarshalJSON(b); err != nil {
		return err
	}
	n.set = true
	return nil
}

// audience decodes like jwt.ClaimStrings.
type audience struct {
	list jwt.ClaimStrings
}

func (a *audience) UnmarshalJSON(b []byte) error {
	// "aud" as camd issues it, ["camd-api"], or as a single string.
	s, ok := plainJSONString(b)
	if !ok && len(b) > 2 && b[0] == '[' && b[len(b)-1] == ']' {
		s, ok = plainJSONString(b[1 : len(b)-1])
	}
	if !ok {
		// Several members, escapes, null and every malformed form are
		// jwt.ClaimStrings's to decode, accept or refuse.
		return a.list.UnmarshalJSON(b)
	}
	if string(s) == Audience {
		a.list = jwt.ClaimStrings{Audience} // the constant: no string to allocate
	} else {
		a.list = jwt.ClaimStrings{string(s)}
	}
	return nil
}

// plainJSONString returns the contents of b when b is a JSON string of
// printable ASCII without escapes, which decodes to exactly those bytes.
func plainJSONString(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	s := b[1 : len(b)-1]
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return s, true
}
