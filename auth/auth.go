// Package auth is camd's one authentication service: the only code that
// looks at a credential. It owns the token format's use (camd/token), the
// signing secret and its rotation, the owner password and its changes, the
// lockout, and the client registry with its revocation. It answers with a
// Principal or an *apierr.Error whose code says why not.
//
// Modules see it through the Echo adapters in echo.go (Bearer, Basic,
// RequireTrustedClock, Login) and PrincipalFrom. There is no password check
// that skips the lockout, and none that a module can call directly.
package auth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	echojwt "github.com/labstack/echo-jwt/v4"

	"camd/lockout"
	"camd/platform/clients"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/password"
	"camd/platform/secret"
	"camd/token"
)

// Config is what Open needs.
type Config struct {
	Dir        datadir.Dir
	SecretFile string        // a secret provided from outside; empty: Dir/secret.bin
	TokenTTL   time.Duration // lifetime of login tokens
	Clock      clock.Clock
	Log        *slog.Logger // nil discards
	// Scopes are every scope a client can be granted, from the module
	// registry (app.Registry.Scopes).
	Scopes []Scope
	// LockoutIPv6Prefix is how many leading bits of an IPv6 address one
	// lockout entry covers (lockout.Key).
	LockoutIPv6Prefix int
	// PasswordParams overrides the argon2id cost; nil means the defaults.
	PasswordParams *password.Params
	// InitialPassword, when set, makes Open check the password files and
	// create the initial owner password on first start, showing it through
	// this function once. The server sets it; the command line does not,
	// as camd passwd is how a damaged password file is replaced.
	InitialPassword func(pw string) error
}

// Service authenticates requests. Open makes one per data directory.
type Service struct {
	log     *slog.Logger
	clock   clock.Clock
	dir     datadir.Dir
	tokens  *token.Authority
	owner   *password.Store
	gate    gate
	clients *clients.Store
	scopes  []Scope

	external bool // the secret comes from SecretFile
	// secretMu is held across a whole rotation, so the key on disk, the
	// key tokens are signed with and secret always agree.
	secretMu sync.Mutex
	secret   SecretInfo
	rotate   func(datadir.Dir) ([]byte, error) // secret.Rotate; tests interleave rotations

	bearer echojwt.Config // the shared part of every Bearer middleware
}

// Open loads or makes the signing secret, opens the password store and the
// client registry, and checks them. It fails, naming the path, when any is
// unusable: camd never runs with a secret that lives only in memory.
func Open(cfg Config) (*Service, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scopes, err := checkScopes(cfg.Scopes)
	if err != nil {
		return nil, err
	}
	var key []byte
	secretPath := cfg.Dir.Join(secret.FileName)
	if cfg.SecretFile != "" {
		secretPath = cfg.SecretFile
		key, err = secret.LoadExternal(cfg.SecretFile, log)
	} else {
		key, err = secret.LoadOrCreate(cfg.Dir, log, cfg.Clock.Now)
	}
	if err != nil {
		return nil, err
	}
	tokens, err := token.NewAuthority(key, cfg.TokenTTL, cfg.Clock)
	if err != nil {
		return nil, err
	}
	params := password.DefaultParams()
	if cfg.PasswordParams != nil {
		params = *cfg.PasswordParams
	}
	// Password hashes run one fewer at a time than there are cores (at
	// least one, at most two): each holds params.Memory, and a core stays
	// free for authenticated requests while logins queue. The benchmark
	// showed reads beside 4 looping logins at 8x their p99 with both cores
	// hashing, under 2x with one.
	owner := password.NewStore(cfg.Dir, params, max(1, min(2, runtime.GOMAXPROCS(0)-1)))
	if cfg.InitialPassword != nil {
		if err := openOwner(cfg, owner, log); err != nil {
			return nil, err
		}
	}
	if err := clients.CheckFile(cfg.Dir, log, cfg.Clock.Now); err != nil {
		return nil, err
	}
	cls, err := clients.Open(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Service{
		log: log, clock: cfg.Clock, dir: cfg.Dir, tokens: tokens, owner: owner, clients: cls, scopes: scopes,
		// Monotonic time.Now, not camd's clock: an NTP step must neither
		// lock nor unlock anybody.
		gate:     gate{owner: owner, limiter: lockout.New(lockout.Config{}), v6Prefix: cfg.LockoutIPv6Prefix},
		external: cfg.SecretFile != "",
		rotate:   secret.Rotate,
	}
	var since time.Time
	if fi, err := os.Stat(secretPath); err == nil {
		since = fi.ModTime()
	}
	s.secret = s.secretInfo(key, since)
	s.bearer = s.bearerConfig()
	return s, nil
}

// openOwner reports a password file damaged while camd was stopped now,
// naming it, never as a 500 on the first login, and makes the initial
// password on first start.
func openOwner(cfg Config, owner *password.Store, log *slog.Logger) error {
	if err := password.CheckFiles(cfg.Dir, log, cfg.Clock.Now); err != nil {
		return err
	}
	created, err := owner.EnsureInitial(cfg.InitialPassword)
	if err != nil {
		return err
	}
	if created {
		log.Info("created the initial owner password and printed it once on stderr; change it with camd passwd", "path", owner.Path())
	}
	return nil
}

// ShowOn returns an InitialPassword that prints the password on w. Printed,
// never logged: logs are kept and shipped, stderr at first start is read by
// the person installing the cam.
func ShowOn(w io.Writer) func(string) error {
	return func(pw string) error {
		_, err := fmt.Fprintf(w, "initial owner password: %s\n", pw)
		return err
	}
}

// Run writes the clients' last-used times now and then, and once more when
// ctx ends.
func (s *Service) Run(ctx context.Context) { s.clients.Run(ctx, s.log) }

// TokenTTL is the lifetime of a login token.
func (s *Service) TokenTTL() time.Duration { return s.tokens.TTL() }

// Owner is the owner's user name, for login and Basic auth.
const Owner = password.Owner

// Scope is a permission a client token can carry. Modules declare theirs
// in their app.ModuleInfo.
type Scope struct {
	Name        string // such as "ack" or "ack:read"
	Description string // one line, for the admin page and camd client --help
	Default     bool   // granted to a client created without scopes named
}

// Scopes returns every scope a client can be granted, sorted by name.
func (s *Service) Scopes() []Scope { return slices.Clone(s.scopes) }

// checkScopes sorts scopes by name and refuses an empty or duplicate name.
func checkScopes(scopes []Scope) ([]Scope, error) {
	out := slices.Clone(scopes)
	slices.SortFunc(out, func(a, b Scope) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for i, sc := range out {
		if !validScope(sc.Name) {
			return nil, fmt.Errorf("auth: scope %q: a scope is 1 to 64 letters, digits, '-', '_', '.' or ':'", sc.Name)
		}
		if i > 0 && out[i-1].Name == sc.Name {
			return nil, fmt.Errorf("auth: scope %q declared twice", sc.Name)
		}
	}
	return out, nil
}

// validScope keeps scope names to the characters of RFC 6749's scope-token
// that need no quoting anywhere camd shows them.
func validScope(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := range len(name) {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
