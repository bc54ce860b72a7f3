package auth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/auth"
	"camd/platform/datadir"
	"camd/platform/secret"
	"camd/token"
)

// TestOpenSecret: the first start makes the signing secret in the data
// directory (0600, 32 bytes) and later starts reuse it, so tokens survive a
// restart; --secret-file is used as given and never written into the data
// directory.
func TestOpenSecret(t *testing.T) {
	f := open(t, nil)
	path := f.dir.Join(secret.FileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no secret after Open: %v", err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != secret.Size {
		t.Errorf("secret %s: mode %v, %d bytes; want 0600 and %d", path, fi.Mode().Perm(), fi.Size(), secret.Size)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info := f.svc.Secret()
	if info.Fingerprint != secret.Fingerprint(key) || info.External || info.Since.IsZero() {
		t.Errorf("Secret() = %+v; want the file's fingerprint %s, not external, with a time", info, secret.Fingerprint(key))
	}
	if strings.Contains(info.Fingerprint, string(key)) {
		t.Error("the fingerprint shows the key")
	}
	tok := f.login(t)

	// A restart on the same directory: same secret, same password.
	again := openIn(t, f.dir, f.clk, nil)
	if got := again.svc.Secret().Fingerprint; got != info.Fingerprint {
		t.Errorf("reopened: fingerprint %s, want %s", got, info.Fingerprint)
	}
	if again.password != "" {
		t.Error("reopened: made another initial password")
	}
	if _, err := again.svc.Verify(tok); err != nil {
		t.Errorf("a token from before the restart: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, key) {
		t.Error("reopening rewrote the secret")
	}

	// An external secret.
	ext := filepath.Join(t.TempDir(), "shared.key")
	extKey := bytes.Repeat([]byte{7}, secret.Size)
	if err := os.WriteFile(ext, extKey, 0o600); err != nil {
		t.Fatal(err)
	}
	x := open(t, func(c *auth.Config) { c.SecretFile = ext })
	if info := x.svc.Secret(); !info.External || info.Fingerprint != secret.Fingerprint(extKey) {
		t.Errorf("external: Secret() = %+v, want External and the file's fingerprint", info)
	}
	if _, err := os.Stat(x.dir.Join(secret.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("external: %s in the data directory: %v", secret.FileName, err)
	}
	// Two services sharing the external secret accept each other's tokens
	// (staging replicas).
	y := open(t, func(c *auth.Config) { c.SecretFile = ext })
	if _, err := x.svc.Verify(y.login(t)); err != nil {
		t.Errorf("a token of a replica sharing the secret: %v", err)
	}
}

// TestOpenRefuses: Open fails, saying why, rather than run with a secret,
// scopes or lifetime that cannot work.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, make([]byte, 16), 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long.key")
	if err := os.WriteFile(long, make([]byte, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*auth.Config)
		want   string // in the error
	}{
		{"external secret missing", func(c *auth.Config) { c.SecretFile = filepath.Join(dir, "nope") }, "nope"},
		{"external secret too short", func(c *auth.Config) { c.SecretFile = short }, "short.key"},
		{"external secret too long", func(c *auth.Config) { c.SecretFile = long }, "long.key"},
		{"zero token lifetime", func(c *auth.Config) { c.TokenTTL = 0 }, "ttl"},
		{"duplicate scope", func(c *auth.Config) {
			c.Scopes = []auth.Scope{{Name: "ack"}, {Name: "snapshot"}, {Name: "ack", Description: "again"}}
		}, `"ack" declared twice`},
		{"empty scope", func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: ""}} }, "scope"},
		{"scope with a space", func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: "ack read"}} }, `"ack read"`},
		{"scope with a quote", func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: `ack"`}} }, "scope"},
		{"scope with a comma", func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: "a,b"}} }, "scope"},
		{"scope not ASCII", func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: "äck"}} }, "scope"},
		{"scope of 65 characters", func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: strings.Repeat("a", 65)}} }, "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := datadir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cfg := auth.Config{Dir: d, TokenTTL: ttl, Clock: &testClock{now: t0}, Scopes: testScopes, PasswordParams: &cheapHash}
			tt.change(&cfg)
			svc, err := auth.Open(cfg)
			if err == nil {
				t.Fatalf("Open = %v, want an error", svc)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v; want it to name %q", err, tt.want)
			}
		})
	}
}

// TestScopes: the declared scopes come back sorted by name, with their
// descriptions and defaults, and the caller cannot change them.
func TestScopes(t *testing.T) {
	f := open(t, func(c *auth.Config) {
		c.Scopes = append(slices.Clone(testScopes), auth.Scope{Name: strings.Repeat("x", 64)}, auth.Scope{Name: "a.b-c_d:E9"})
	})
	got := f.svc.Scopes()
	var names []string
	for _, sc := range got {
		names = append(names, sc.Name)
	}
	want := []string{"a.b-c_d:E9", "ack", "ack:read", "snapshot", strings.Repeat("x", 64)}
	if !slices.Equal(names, want) {
		t.Errorf("Scopes() names %q, want %q", names, want)
	}
	for _, sc := range got {
		if sc.Name == "ack" && (!sc.Default || sc.Description != "post acknowledgements") {
			t.Errorf("ack = %+v, want its description and Default", sc)
		}
		if sc.Name == "ack:read" && sc.Default {
			t.Errorf("ack:read = %+v, want not Default", sc)
		}
	}
	got[0].Name = "changed"
	if f.svc.Scopes()[0].Name == "changed" {
		t.Error("Scopes() returns the service's own slice")
	}
	if none := open(t, func(c *auth.Config) { c.Scopes = nil }); len(none.svc.Scopes()) != 0 {
		t.Errorf("no scopes declared: Scopes() = %v", none.svc.Scopes())
	}
}

// TestOpenInitialPassword: the initial owner password is made and shown
// once, on first start, and works; ShowOn prints it.
func TestOpenInitialPassword(t *testing.T) {
	f := open(t, nil)
	if len(f.password) < 20 {
		t.Fatalf("initial password %q: want a long random one", f.password)
	}
	if _, err := os.Stat(f.svc.PasswordPath()); err != nil {
		t.Errorf("PasswordPath %s: %v", f.svc.PasswordPath(), err)
	}
	if filepath.Dir(f.svc.PasswordPath()) != f.dir.Path() {
		t.Errorf("PasswordPath %s is not in the data directory %s", f.svc.PasswordPath(), f.dir.Path())
	}
	if raw, _ := os.ReadFile(f.svc.PasswordPath()); bytes.Contains(raw, []byte(f.password)) {
		t.Error("the password file holds the password itself")
	}
	f.login(t)

	var out bytes.Buffer
	d, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	openIn(t, d, &testClock{now: t0}, func(c *auth.Config) { c.InitialPassword = auth.ShowOn(&out) })
	line := out.String()
	if !strings.HasPrefix(line, "initial owner password: ") || !strings.HasSuffix(line, "\n") || len(line) < 40 {
		t.Errorf("ShowOn printed %q", line)
	}
	var shown []string
	openIn(t, d, &testClock{now: t0}, func(c *auth.Config) {
		c.InitialPassword = func(pw string) error { shown = append(shown, pw); return nil }
	})
	if len(shown) != 0 {
		t.Errorf("second start showed a password again")
	}
}

// TestAddClient: clients get the scopes asked for, checked against the
// declared ones, or the default scopes; refusals carry the code a client of
// the admin API switches on.
func TestAddClient(t *testing.T) {
	tests := []struct {
		name       string
		client     string
		scopes     []string
		wantScopes []string
		wantCode   apierr.Code
	}{
		{name: "default scopes", client: "porch", wantScopes: []string{"ack"}},
		{name: "empty list means default", client: "porch", scopes: []string{}, wantScopes: []string{"ack"}},
		{name: "one scope", client: "cloud", scopes: []string{"snapshot"}, wantScopes: []string{"snapshot"}},
		{name: "sorted, each once", client: "all", scopes: []string{"snapshot", "ack:read", "ack", "ack"}, wantScopes: []string{"ack", "ack:read", "snapshot"}},
		{name: "longest name", client: strings.Repeat("n", 64), scopes: []string{"ack"}, wantScopes: []string{"ack"}},
		{name: "unknown scope", client: "porch", scopes: []string{"ack", "admin"}, wantCode: apierr.InvalidBody},
		{name: "scope in other case", client: "porch", scopes: []string{"ACK"}, wantCode: apierr.InvalidBody},
		{name: "empty scope", client: "porch", scopes: []string{""}, wantCode: apierr.InvalidBody},
		{name: "empty name", client: "", scopes: []string{"ack"}, wantCode: apierr.InvalidBody},
		{name: "name with a slash", client: "a/b", scopes: []string{"ack"}, wantCode: apierr.InvalidBody},
		{name: "name with a space", client: "a b", scopes: []string{"ack"}, wantCode: apierr.InvalidBody},
		{name: "name too long", client: strings.Repeat("n", 65), scopes: []string{"ack"}, wantCode: apierr.InvalidBody},
		{name: "existing name", client: "garage", scopes: []string{"ack"}, wantCode: apierr.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := open(t, nil)
			f.addClient(t, "garage", "ack:read")
			c, g, err := f.svc.AddClient(tt.client, tt.scopes)
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
				if g.Token != "" {
					t.Error("a refused AddClient returned a token")
				}
				list, _ := f.svc.Clients()
				if len(list) != 1 || list[0].Name != "garage" || !slices.Equal(list[0].Scopes, []string{"ack:read"}) {
					t.Errorf("after a refused AddClient: Clients() = %+v", list)
				}
				return
			}
			if err != nil {
				t.Fatalf("AddClient: %v", err)
			}
			if c.Name != tt.client || !slices.Equal(c.Scopes, tt.wantScopes) || !c.CreatedAt.Equal(t0) {
				t.Errorf("AddClient = %+v; want %s with %q created at %v", c, tt.client, tt.wantScopes, t0)
			}
			if g.Token == "" || g.ExpiresIn != token.ClientTTL {
				t.Errorf("grant %+v: want a token living %v", g, token.ClientTTL)
			}
			p, err := f.svc.Verify(g.Token)
			if err != nil {
				t.Fatalf("Verify of the new client's token: %v", err)
			}
			want := auth.Principal{Subject: token.ClientPrefix + tt.client, Kind: auth.KindClient, Client: tt.client, Scopes: tt.wantScopes}
			if p.Subject != want.Subject || p.Kind != want.Kind || p.Client != want.Client || !slices.Equal(p.Scopes, want.Scopes) {
				t.Errorf("Principal %+v, want %+v", p, want)
			}
			if p.TokenID == "" || !p.Expires.Equal(t0.Add(token.ClientTTL)) {
				t.Errorf("Principal %+v: want a token id and expiry %v", p, t0.Add(token.ClientTTL))
			}
			for _, sc := range tt.wantScopes {
				if !p.HasScope(sc) {
					t.Errorf("HasScope(%q) false", sc)
				}
			}
			if p.HasScope("admin") {
				t.Error("a client has a scope it was not granted")
			}
			list, err := f.svc.Clients()
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].Name > list[1].Name {
				t.Errorf("Clients() = %+v, want garage and %s, sorted", list, tt.client)
			}
		})
	}
}

// TestAddClientMessages: the unknown-scope refusal names the known scopes,
// and shows a long input cut short.
func TestAddClientMessages(t *testing.T) {
	f := open(t, nil)
	_, _, err := f.svc.AddClient("porch", []string{"admin"})
	e, ok := apierr.As(err)
	if !ok || !strings.Contains(e.Message, `"admin"`) || !strings.Contains(e.Message, "ack, ack:read, snapshot") {
		t.Errorf("unknown scope: %v; want the scope and the known ones named", err)
	}
	_, _, err = f.svc.AddClient("porch", []string{strings.Repeat("z", 1000)})
	if e, ok := apierr.As(err); !ok || len(e.Message) > 200 {
		t.Errorf("a 1000-byte scope: message %d bytes long", len(e.Message))
	}
}

// TestAddClientNoDefault: with no default scope declared, a client must
// name its scopes.
func TestAddClientNoDefault(t *testing.T) {
	f := open(t, func(c *auth.Config) { c.Scopes = []auth.Scope{{Name: "snapshot"}} })
	_, _, err := f.svc.AddClient("porch", nil)
	wantCode(t, err, apierr.InvalidBody)
	if _, _, err := f.svc.AddClient("porch", []string{"snapshot"}); err != nil {
		t.Errorf("AddClient with a named scope: %v", err)
	}
}

// TestRevokeClient: a revoked client's token is refused as token_revoked
// from the next check on, also after a client of the same name is added
// again; other clients are untouched.
func TestRevokeClient(t *testing.T) {
	f := open(t, nil)
	porch := f.addClient(t, "porch")
	garage := f.addClient(t, "garage", "ack:read")
	if err := f.svc.RevokeClient("porch"); err != nil {
		t.Fatalf("RevokeClient: %v", err)
	}
	_, err := f.svc.Verify(porch)
	wantCode(t, err, apierr.TokenRevoked)
	if _, err := f.svc.Verify(garage); err != nil {
		t.Errorf("another client's token: %v", err)
	}
	wantCode(t, f.svc.RevokeClient("porch"), apierr.NotFound)
	wantCode(t, f.svc.RevokeClient("never-was"), apierr.NotFound)

	again := f.addClient(t, "porch")
	_, err = f.svc.Verify(porch)
	wantCode(t, err, apierr.TokenRevoked)
	if _, err := f.svc.Verify(again); err != nil {
		t.Errorf("the new porch's token: %v", err)
	}
	list, err := f.svc.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "garage" || list[1].Name != "porch" {
		t.Errorf("Clients() = %+v", list)
	}
	// The registry is on disk: another service on the directory (camd
	// client revoke on a running cam) sees it.
	other := openIn(t, f.dir, f.clk, nil)
	if err := other.svc.RevokeClient("garage"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Verify(garage)
	wantCode(t, err, apierr.TokenRevoked)
}

// signWith signs claims with the service's own secret, read from its file,
// as only a key holder could.
func signWith(t *testing.T, f *fixture, claims jwt.Claims) string {
	t.Helper()
	key, err := os.ReadFile(f.dir.Join(secret.FileName))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestVerifyCodes: every refused token is an *apierr.Error answered with
// 401, and its code tells apart what a client does next.
func TestVerifyCodes(t *testing.T) {
	f := open(t, nil)
	owner := f.login(t)
	expired := f.loginAt(t, t0.Add(-2*ttl))
	revoked := f.addClient(t, "gone")
	if err := f.svc.RevokeClient("gone"); err != nil {
		t.Fatal(err)
	}
	other := open(t, nil)
	foreign := other.login(t)
	claims := func(sub string) token.Claims {
		return token.Claims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: token.Issuer, Audience: jwt.ClaimStrings{token.Audience}, Subject: sub,
			IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(ttl)),
		}}
	}
	tests := []struct {
		name string
		tok  string
		code apierr.Code // "" means valid
	}{
		{"owner", owner, ""},
		{"empty", "", apierr.InvalidToken},
		{"garbage", "garbage", apierr.InvalidToken},
		{"three segments of garbage", "a.b.c", apierr.InvalidToken},
		{"another cam's token", foreign, apierr.InvalidToken},
		{"expired", expired, apierr.TokenExpired},
		{"revoked client", revoked, apierr.TokenRevoked},
		{"signed, but neither owner nor client", signWith(t, f, claims("someone")), apierr.InvalidToken},
		{"signed client token of a client that never was", signWith(t, f, func() token.Claims {
			c := claims(token.ClientPrefix + "ghost")
			c.ID = "made-up"
			return c
		}()), apierr.TokenRevoked},
		{"signed owner token, unknown password version", signWith(t, f, func() token.Claims {
			c := claims(token.OwnerSubject)
			c.PasswordVersion = "guess"
			return c
		}()), apierr.PasswordChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.svc.Verify(tt.tok)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Kind != auth.KindOwner || p.Subject != token.OwnerSubject || p.Client != "" || !p.Expires.Equal(t0.Add(ttl)) {
					t.Errorf("Principal %+v", p)
				}
				if !p.HasScope("anything") {
					t.Error("the owner lacks a scope")
				}
				return
			}
			if p != nil {
				t.Errorf("Principal %+v with an error", p)
			}
			wantCode(t, err, tt.code)
			if e, ok := apierr.As(err); ok && e.Status() != 401 {
				t.Errorf("status %d, want 401", e.Status())
			}
		})
	}
}

// TestSetPassword: a bad password is refused as invalid_body and changes
// nothing; a good one refuses every owner token issued before
// (password_changed), and only the new password logs in.
func TestSetPassword(t *testing.T) {
	f := open(t, nil)
	before := f.login(t)
	client := f.addClient(t, "porch")
	for _, bad := range []string{"", "short", strings.Repeat("x", 1025)} {
		wantCode(t, f.svc.SetPassword(bad), apierr.InvalidBody)
	}
	if _, err := f.svc.Verify(before); err != nil {
		t.Fatalf("a refused SetPassword refused tokens: %v", err)
	}
	const next = "correct horse battery staple"
	if err := f.svc.SetPassword(next); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	_, err := f.svc.Verify(before)
	wantCode(t, err, apierr.PasswordChanged)
	if _, err := f.svc.Verify(client); err != nil {
		t.Errorf("a client token after a password change: %v", err)
	}
	_, err = f.svc.Login(context.Background(), "192.0.2.1", auth.Owner, f.password)
	wantCode(t, err, apierr.InvalidCredentials)
	f.password = next
	if _, err := f.svc.Verify(f.login(t)); err != nil {
		t.Errorf("a token issued after the change: %v", err)
	}
	// A change made by another process (camd passwd) applies here on the
	// next check too.
	current := f.login(t)
	other := openIn(t, f.dir, f.clk, nil)
	if err := other.svc.SetPassword("another long password"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Verify(current)
	wantCode(t, err, apierr.PasswordChanged)
}

// TestRotateSecret: rotation refuses every token issued before
// (secret_rotated), owner's and clients' alike, persists the new secret,
// and is refused for a secret provided from outside.
func TestRotateSecret(t *testing.T) {
	f := open(t, nil)
	owner := f.login(t)
	client := f.addClient(t, "porch")
	was := f.svc.Secret()
	f.clk.set(t0.Add(time.Minute))
	if err := f.svc.RotateSecret(); err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	for name, tok := range map[string]string{"owner": owner, "client": client} {
		_, err := f.svc.Verify(tok)
		wantCode(t, err, apierr.SecretRotated)
		if !errors.Is(err, token.ErrRotated) {
			t.Errorf("%s token: %v does not wrap token.ErrRotated", name, err)
		}
	}
	now := f.svc.Secret()
	if now.Fingerprint == was.Fingerprint || !now.Since.Equal(t0.Add(time.Minute)) || now.External {
		t.Errorf("after rotation Secret() = %+v (before %+v)", now, was)
	}
	key, err := os.ReadFile(f.dir.Join(secret.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if secret.Fingerprint(key) != now.Fingerprint {
		t.Error("the rotated secret is not the one on disk")
	}
	fresh := f.login(t)
	if _, err := f.svc.Verify(fresh); err != nil {
		t.Errorf("a token issued after rotation: %v", err)
	}
	// A restart keeps the new secret, and forgets the old one: its tokens
	// are refused there too, though no longer told apart.
	again := openIn(t, f.dir, f.clk, nil)
	if _, err := again.svc.Verify(fresh); err != nil {
		t.Errorf("after a restart, a token of the rotated secret: %v", err)
	}
	_, err = again.svc.Verify(owner)
	wantCode(t, err, apierr.InvalidToken)

	ext := filepath.Join(t.TempDir(), "shared.key")
	extKey := bytes.Repeat([]byte{9}, secret.Size)
	if err := os.WriteFile(ext, extKey, 0o600); err != nil {
		t.Fatal(err)
	}
	x := open(t, func(c *auth.Config) { c.SecretFile = ext })
	xTok := x.login(t)
	err = x.svc.RotateSecret()
	wantCode(t, err, apierr.Conflict)
	if !errors.Is(err, auth.ErrExternalSecret) {
		t.Errorf("external: %v does not wrap ErrExternalSecret", err)
	}
	if raw, _ := os.ReadFile(ext); !bytes.Equal(raw, extKey) {
		t.Error("external secret file changed")
	}
	if _, err := x.svc.Verify(xTok); err != nil {
		t.Errorf("external: a refused rotation refused a token: %v", err)
	}
}

// TestRotateSecretConcurrent: rotations at once leave the key on disk the
// one tokens are signed with, and the one Secret() describes: a token issued
// afterwards verifies with a service re-opened from the directory. The
// first rotation pauses between writing its key and switching to it, while
// the others run: unserialised, it would then switch to a key since
// overwritten on disk.
func TestRotateSecretConcurrent(t *testing.T) {
	f := open(t, nil)
	paused, othersDone := make(chan struct{}), make(chan struct{})
	var started atomic.Bool
	auth.SetRotate(f.svc, func(d datadir.Dir) ([]byte, error) {
		key, err := secret.Rotate(d)
		if started.CompareAndSwap(false, true) {
			close(paused)
			// Serialised, the others wait for this one: do not wait forever.
			select {
			case <-othersDone:
			case <-time.After(200 * time.Millisecond):
			}
		}
		return key, err
	})
	rotate := func() {
		if err := f.svc.RotateSecret(); err != nil {
			t.Error(err)
		}
	}
	var firstDone, others sync.WaitGroup
	firstDone.Go(rotate)
	<-paused
	for range 7 {
		others.Go(rotate)
	}
	others.Wait()
	close(othersDone)
	firstDone.Wait()

	onDisk, err := secret.LoadOrCreate(f.dir, slog.New(slog.DiscardHandler), f.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.svc.Secret().Fingerprint; got != secret.Fingerprint(onDisk) {
		t.Errorf("Secret() says %s, the file holds %s", got, secret.Fingerprint(onDisk))
	}
	tok := f.login(t)
	if _, err := openIn(t, f.dir, f.clk, nil).svc.Verify(tok); err != nil {
		t.Errorf("a token issued after the rotations, after a restart: %v", err)
	}
}

// TestLogin: only the owner's user and password get a token, which is an
// owner token living TokenTTL.
func TestLogin(t *testing.T) {
	f := open(t, nil)
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"owner", auth.Owner, f.password, true},
		{"wrong password", auth.Owner, f.password + "x", false},
		{"password prefix", auth.Owner, f.password[:len(f.password)-1], false},
		{"wrong user", "admin", f.password, false},
		{"user in other case", strings.ToUpper(auth.Owner), f.password, false},
		{"empty", "", "", false},
		{"huge password", auth.Owner, strings.Repeat("p", 1<<16), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An address each: the failures lock nobody.
			g, err := f.svc.Login(context.Background(), "192.0.2."+strconv.Itoa(10+i), tt.user, tt.pass)
			if !tt.ok {
				wantCode(t, err, apierr.InvalidCredentials)
				if g.Token != "" {
					t.Error("a refused login returned a token")
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if g.ExpiresIn != ttl || f.svc.TokenTTL() != ttl {
				t.Errorf("ExpiresIn %v, TokenTTL %v; want %v", g.ExpiresIn, f.svc.TokenTTL(), ttl)
			}
			p, err := f.svc.Verify(g.Token)
			if err != nil || p.Kind != auth.KindOwner || !p.Expires.Equal(t0.Add(ttl)) {
				t.Errorf("Verify of the login token: %+v, %v", p, err)
			}
		})
	}
}

// TestLoginLockout: repeated wrong passwords from one address lock it, the
// right password included, with a *auth.Refusal saying locked_out and when
// to retry; other addresses, and an IPv6 address outside the locked
// prefix, are not locked; a success before the limit resets the count.
func TestLoginLockout(t *testing.T) {
	const failures = 5 // lockout's default MaxFailures
	ctx := context.Background()
	tests := []struct {
		name   string
		locked string // failures come from here
		probes map[string]bool
	}{
		{"IPv4", "192.0.2.1", map[string]bool{"192.0.2.1": true, "192.0.2.2": false}},
		{"IPv6 prefix", "2001:db8:0:1::1", map[string]bool{
			"2001:db8:0:1::1": true, "2001:db8:0:1:ffff::2": true, "2001:db8:0:2::1": false, "192.0.2.1": false,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := open(t, func(c *auth.Config) { c.LockoutIPv6Prefix = 64 })
			for i := range failures {
				_, err := f.svc.Login(ctx, tt.locked, auth.Owner, "wrong password")
				wantCode(t, err, apierr.InvalidCredentials)
				var r *auth.Refusal
				if errors.As(err, &r) {
					t.Fatalf("failure %d refused before the limit: %v", i+1, err)
				}
			}
			for addr, locked := range tt.probes {
				g, err := f.svc.Login(ctx, addr, auth.Owner, f.password)
				if !locked {
					if err != nil {
						t.Errorf("%s: %v, want not locked", addr, err)
					}
					continue
				}
				var r *auth.Refusal
				if !errors.As(err, &r) {
					t.Fatalf("%s: Login = %+v, %v; want a *auth.Refusal", addr, g, err)
				}
				if r.Err == nil || r.Err.Code != apierr.LockedOut || r.RetryAfter <= 0 || r.RetryAfter > 15*time.Minute {
					t.Errorf("%s: Refusal %+v, want locked_out with a RetryAfter", addr, r)
				}
				wantCode(t, err, apierr.LockedOut)
				if e, _ := apierr.As(err); e != nil && e.Status() != 429 {
					t.Errorf("locked_out answers %d, want 429", e.Status())
				}
				if g.Token != "" {
					t.Error("a locked address got a token")
				}
			}
		})
	}

	t.Run("a success resets the count", func(t *testing.T) {
		f := open(t, nil)
		for range 2 {
			for range failures - 1 {
				_, err := f.svc.Login(ctx, "192.0.2.3", auth.Owner, "wrong password")
				wantCode(t, err, apierr.InvalidCredentials)
			}
			if _, err := f.svc.Login(ctx, "192.0.2.3", auth.Owner, f.password); err != nil {
				t.Fatalf("Login after %d failures: %v", failures-1, err)
			}
		}
	})
}

// TestClientKey: the connection caps count an IPv6 client by its prefix,
// as the lockout does.
func TestClientKey(t *testing.T) {
	f := open(t, func(c *auth.Config) { c.LockoutIPv6Prefix = 64 })
	key := func(s string) string {
		t.Helper()
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		return f.svc.ClientKey(a)
	}
	if key("2001:db8::1") != key("2001:db8::ffff:2") {
		t.Error("two addresses of one /64 count as two clients")
	}
	if key("2001:db8::1") == key("2001:db8:0:1::1") {
		t.Error("two /64s count as one client")
	}
	if key("192.0.2.1") == key("192.0.2.2") || key("::ffff:192.0.2.1") != key("192.0.2.1") {
		t.Error("IPv4 addresses are not counted one by one")
	}
}

// TestValidClientName mirrors the registry's rule for the command line.
func TestValidClientName(t *testing.T) {
	for name, want := range map[string]bool{
		"porch-esp32": true, "a.b_c": true, strings.Repeat("x", 64): true,
		"": false, "a b": false, "a/b": false, "../x": false, strings.Repeat("x", 65): false, "é": false,
	} {
		if got := auth.ValidClientName(name); got != want {
			t.Errorf("ValidClientName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestRun: client usage seen by Bearer is written when Run's context ends,
// and read back by the next start.
func TestRun(t *testing.T) {
	f := open(t, nil)
	tok := f.addClient(t, "porch")
	e := newEcho()
	e.GET("/p", func(c echo.Context) error { return c.NoContent(204) }, f.svc.Bearer())
	url := serve(t, e)
	f.clk.set(t0.Add(time.Minute))
	if r := request(t, "GET", url+"/p", []string{"Bearer " + tok}, nil); r.status != 204 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	list, err := f.svc.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].LastUsed == nil || !list[0].LastUsed.At.Equal(t0.Add(time.Minute)) || list[0].LastUsed.Addr != "127.0.0.1" {
		t.Fatalf("Clients() after a request = %+v", list)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
	again := openIn(t, f.dir, f.clk, nil)
	list, err = again.svc.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].LastUsed == nil || list[0].LastUsed.Addr != "127.0.0.1" {
		t.Errorf("after a restart Clients() = %+v, want the saved usage", list)
	}
}
