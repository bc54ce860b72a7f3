package auth

import (
	"errors"
	"slices"
	"strings"
	"time"

	"camd/apierr"
	"camd/internal/profiling"
	"camd/token"
)

// Kind says who a Principal is.
type Kind string

// The kinds of Principal.
const (
	KindOwner  Kind = "owner"  // the cam's owner, by password or login token
	KindClient Kind = "client" // a named client credential
)

// Principal is who a request is from, as the auth service verified it.
type Principal struct {
	Subject string // "owner" or "client:NAME", as in the token's sub
	Kind    Kind
	Client  string   // the client's name; empty for the owner
	Scopes  []string // the client's scopes; the owner has every scope
	TokenID string   // the token's jti; empty for owner tokens and Basic auth
	Expires time.Time
}

// HasScope reports whether p may act under scope. The owner may do
// everything.
func (p *Principal) HasScope(scope string) bool {
	return p.Kind == KindOwner || slices.Contains(p.Scopes, scope)
}

// ownerPrincipal is the Principal of a Basic auth request.
var ownerPrincipal = Principal{Subject: token.OwnerSubject, Kind: KindOwner}

// Verify checks a bearer token and returns its Principal, or an
// *apierr.Error whose code tells an expired, revoked, rotated or
// password-changed token apart from one that is not camd's at all.
func (s *Service) Verify(raw string) (*Principal, error) {
	c, err := s.tokens.Verify(raw)
	switch {
	case errors.Is(err, token.ErrExpired):
		return nil, apierr.Wrap(apierr.TokenExpired, "the token has expired; log in again", err)
	case errors.Is(err, token.ErrRotated):
		return nil, apierr.Wrap(apierr.SecretRotated, "the token was signed with a signing secret since rotated", err)
	case err != nil:
		return nil, apierr.Wrap(apierr.InvalidToken, "invalid token", err)
	}
	p := &Principal{Subject: c.Subject, TokenID: c.ID}
	if c.ExpiresAt != nil {
		p.Expires = c.ExpiresAt.Time
	}
	if name, ok := c.Client(); ok {
		// A name no client can have is no client's: refused before it
		// reaches a message (and the challenge's error_description).
		if !ValidClientName(name) {
			return nil, apierr.New(apierr.InvalidToken, "invalid token")
		}
		if !s.clients.Valid(name, c.ID) {
			return nil, apierr.New(apierr.TokenRevoked, "the client "+name+" was revoked or replaced")
		}
		p.Kind, p.Client, p.Scopes = KindClient, name, strings.Fields(c.Scope)
		return p, nil
	}
	if c.Subject != token.OwnerSubject {
		return nil, apierr.New(apierr.InvalidToken, "invalid token")
	}
	if profiling.Off(profiling.PasswordChange) {
		p.Kind = KindOwner
		return p, nil
	}
	ch, err := s.owner.Changed()
	if err != nil {
		return nil, err // unreadable: a 500, and logged
	}
	if c.PasswordVersion != ch.Version {
		return nil, apierr.New(apierr.PasswordChanged, "the owner password changed after the token was issued; log in again")
	}
	p.Kind = KindOwner
	return p, nil
}
