// Package token owns camd's access token format: HS256 JWTs (RFC 7519) with
// sub, iat, exp, iss and aud, signed with the cam's secret. Login issues them
// and the bearer middleware verifies them; nothing else knows the format.
package token

import (
	"errors"
	"fmt"
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

// Claims are the claims camd puts in a token.
type Claims = jwt.RegisteredClaims

// Authority issues and verifies tokens with one key.
type Authority struct {
	key    []byte
	ttl    time.Duration
	clock  clock.Clock
	parser *jwt.Parser
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
	return &Authority{
		key:   key,
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
	}, nil
}

// TTL returns the lifetime of issued tokens.
func (a *Authority) TTL() time.Duration { return a.ttl }

// Issue returns a signed token for subject.
func (a *Authority) Issue(subject string) (string, error) {
	if subject == "" {
		return "", errors.New("token: empty subject")
	}
	now := a.clock.Now().Truncate(time.Second)
	claims := Claims{
		Issuer:    Issuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(a.ttl)),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return signed, nil
}

// ErrInvalid wraps every reason a presented token is refused.
var ErrInvalid = errors.New("invalid token")

// Verify checks a presented token and returns its claims.
func (a *Authority) Verify(raw string) (*Claims, error) {
	var claims Claims
	_, err := a.parser.ParseWithClaims(raw, &claims, a.keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	return &claims, nil
}

func (a *Authority) keyFunc(t *jwt.Token) (any, error) {
	// WithValidMethods already refuses other algorithms; checking the
	// concrete method too means a future parser option can't undo the pin.
	if t.Method != jwt.SigningMethodHS256 {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	return a.key, nil
}
