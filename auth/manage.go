package auth

import (
	"context"
	"errors"
	"slices"
	"time"

	"camd/apierr"
	"camd/platform/clients"
	"camd/platform/password"
	"camd/platform/secret"
	"camd/token"
)

// Grant is a token issued for a login or a new client.
type Grant struct {
	Token     string
	ExpiresIn time.Duration
}

// Login checks the owner's user and password, from addr, through the
// lockout, and issues an owner token bound to the password version checked:
// a change that lands meanwhile refuses the token too.
func (s *Service) Login(ctx context.Context, addr, user, pass string) (Grant, error) {
	ok, version, err := s.gate.check(ctx, addr, user, pass)
	if err != nil {
		return Grant{}, err
	}
	if !ok {
		return Grant{}, apierr.New(apierr.InvalidCredentials, "wrong user or password")
	}
	tok, err := s.tokens.IssueOwner(version)
	if err != nil {
		return Grant{}, err
	}
	return Grant{Token: tok, ExpiresIn: s.tokens.TTL()}, nil
}

// CheckBasic checks HTTP Basic credentials from addr through the lockout
// (see gate.checkBasic).
func (s *Service) CheckBasic(ctx context.Context, addr, user, pass string) (bool, error) {
	return s.gate.checkBasic(ctx, addr, user, pass)
}

// SetPassword replaces the owner password: every owner token issued before
// is refused (password_changed) from the next request on.
func (s *Service) SetPassword(pw string) error {
	if err := password.Validate(pw); err != nil {
		return apierr.Wrap(apierr.InvalidBody, err.Error(), err)
	}
	return s.owner.Set(pw, s.clock.Now())
}

// PasswordPath is where the owner password's hash is kept.
func (s *Service) PasswordPath() string { return s.owner.Path() }

// Client is a client credential as the owner sees it: never a token, never
// its id.
type Client = clients.Listed

// Clients lists the clients, sorted by name.
func (s *Service) Clients() ([]Client, error) { return s.clients.List() }

// AddClient creates a client granted scopes (the default scopes when none
// are named) and returns its token, which is shown once and never kept.
func (s *Service) AddClient(name string, scopes []string) (Client, Grant, error) {
	scopes, err := s.grantable(scopes)
	if err != nil {
		return Client{}, Grant{}, err
	}
	c, err := s.clients.Add(name, scopes, s.clock.Now())
	switch {
	case errors.Is(err, clients.ErrExists):
		return Client{}, Grant{}, apierr.Wrap(apierr.Conflict, "a client named "+name+" exists", err)
	case errors.Is(err, clients.ErrBadName):
		return Client{}, Grant{}, apierr.Wrap(apierr.InvalidBody, err.Error(), err)
	case err != nil:
		return Client{}, Grant{}, err
	}
	tok, err := s.tokens.IssueClient(c.Name, c.ID, c.Scopes)
	if err != nil {
		return Client{}, Grant{}, err
	}
	s.log.Info("created client", "name", c.Name, "scopes", c.Scopes)
	return Client{Name: c.Name, Scopes: c.Scopes, CreatedAt: c.CreatedAt}, Grant{Token: tok, ExpiresIn: token.ClientTTL}, nil
}

// grantable checks requested scopes against the declared ones; none means
// the default scopes.
func (s *Service) grantable(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		for _, sc := range s.scopes {
			if sc.Default {
				scopes = append(scopes, sc.Name)
			}
		}
		if len(scopes) == 0 {
			return nil, apierr.New(apierr.InvalidBody, "name at least one scope: none is granted by default")
		}
	}
	for _, name := range scopes {
		if !slices.ContainsFunc(s.scopes, func(sc Scope) bool { return sc.Name == name }) {
			return nil, apierr.New(apierr.InvalidBody, "unknown scope "+quote(name)+" (known: "+s.scopeList()+")")
		}
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s *Service) scopeList() string {
	out := ""
	for i, sc := range s.scopes {
		if i > 0 {
			out += ", "
		}
		out += sc.Name
	}
	return out
}

// quote shows a client's input in a message, without letting it run on.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + s + `"`
}

// RevokeClient deletes a client: its tokens are refused (token_revoked)
// from the next request on.
func (s *Service) RevokeClient(name string) error {
	err := s.clients.Remove(name)
	if errors.Is(err, clients.ErrNotFound) {
		return apierr.Wrap(apierr.NotFound, "no client named "+name, err)
	}
	if err == nil {
		s.log.Info("revoked client", "name", name)
	}
	return err
}

// SecretInfo describes the signing secret for the owner's admin page.
type SecretInfo struct {
	Fingerprint string    // secret.Fingerprint of the key
	Since       time.Time // when it was made (its file's mtime); zero if unknown
	External    bool      // it comes from --secret-file and camd cannot rotate it
}

// Secret describes the current signing secret, never revealing it.
func (s *Service) Secret() SecretInfo {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	return s.secret
}

func (s *Service) secretInfo(key []byte, since time.Time) SecretInfo {
	return SecretInfo{Fingerprint: secret.Fingerprint(key), Since: since, External: s.external}
}

// ErrExternalSecret refuses rotation of a secret provided from outside.
var ErrExternalSecret = errors.New("the signing secret is provided from outside (--secret-file); rotate it there")

// RotateSecret makes a new signing secret and switches to it: every token
// issued before is refused (secret_rotated) from the next request on.
// Rotations run one at a time: two at once could otherwise leave one key on
// disk and sign with the other.
func (s *Service) RotateSecret() error {
	if s.external {
		return apierr.Wrap(apierr.Conflict, ErrExternalSecret.Error(), ErrExternalSecret)
	}
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	key, err := s.rotate(s.dir)
	if err != nil {
		return err
	}
	if err := s.tokens.SetKey(key); err != nil {
		return err
	}
	s.secret = s.secretInfo(key, s.clock.Now())
	s.log.Warn("rotated the signing secret: every token issued before is now refused")
	return nil
}

// ValidClientName reports whether name can name a client.
func ValidClientName(name string) bool { return clients.ValidateName(name) == nil }
