// Package token owns camd's access token format: HS256 JWTs (RFC 7519) with
// sub, iat, exp, iss and aud, signed with the cam's secret. The auth service
// (camd/auth) issues and verifies them through it; nothing else knows the
// format. Parsing and claim validation are golang-jwt's own.
package token

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

// Authority issues and verifies tokens with one key, which SetKey swaps.
type Authority struct {
	keys   atomic.Pointer[keyRing]
	ttl    time.Duration
	clock  clock.Clock
	parser *jwt.Parser
}

// keyRing is the signing key and the few it replaced since start. A token
// signed with a replaced key is refused all the same; knowing the key lets
// the refusal say why (ErrRotated), so an app asks for a new credential
// rather than reports a forgery.
type keyRing struct {
	current []byte
	retired [][]byte    // newest first, at most maxRetired
	keyFunc jwt.Keyfunc // for current, made once rather than per token
}

func newKeyRing(current []byte, retired [][]byte) *keyRing {
	return &keyRing{current: current, retired: retired, keyFunc: keyFunc(current)}
}

// maxRetired bounds the replaced keys kept in memory.
const maxRetired = 4

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
	a.keys.Store(newKeyRing(key, nil))
	return a, nil
}

// SetKey replaces the signing key: every token signed with the old one is
// refused from the next request on, with ErrRotated.
func (a *Authority) SetKey(key []byte) error {
	if len(key) < MinKeySize {
		return fmt.Errorf("token: key is %d bytes, need at least %d", len(key), MinKeySize)
	}
	for {
		old := a.keys.Load()
		retired := append([][]byte{old.current}, old.retired...)
		next := newKeyRing(key, retired[:min(len(retired), maxRetired)])
		if a.keys.CompareAndSwap(old, next) {
			return nil
		}
	}
}

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
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.keys.Load().current)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return signed, nil
}

// Errors Verify wraps. Every refusal wraps ErrInvalid; an expired token
// also wraps ErrExpired, one signed with a replaced key ErrRotated.
var (
	ErrInvalid = errors.New("invalid token")
	ErrExpired = jwt.ErrTokenExpired
	ErrRotated = errors.New("signed with a signing secret since rotated")
)

// Verify checks a presented token's signature and claims, through
// golang-jwt's parser and claim types, and returns its claims.
func (a *Authority) Verify(raw string) (*Claims, error) {
	ring := a.keys.Load()
	claims := new(Claims)
	_, err := a.parser.ParseWithClaims(raw, claims, ring.keyFunc)
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) && a.signedByRetired(ring, raw) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrRotated)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	return claims, nil
}

// signedByRetired reports whether raw, refused for its signature, is a token
// a replaced key signed. Only a refused token pays for it, at most
// maxRetired HMACs more.
func (a *Authority) signedByRetired(ring *keyRing, raw string) bool {
	for _, key := range ring.retired {
		// Claims are not judged: a rotated key makes the token worthless
		// whatever they say.
		p := jwt.NewParser(jwt.WithValidMethods([]string{Algorithm}), jwt.WithoutClaimsValidation())
		if _, err := p.ParseWithClaims(raw, new(Claims), keyFunc(key)); err == nil {
			return true
		}
	}
	return false
}

var errCritical = errors.New("critical header extensions are not supported")

func keyFunc(key []byte) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
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
		return key, nil
	}
}
