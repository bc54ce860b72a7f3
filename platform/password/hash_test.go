package password_test

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"camd/platform/password"
)

// cheap keeps the suite fast; DefaultParams is tested once on its own.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func mustHash(t *testing.T, pw string, p password.Params) string {
	t.Helper()
	h, err := password.Hash(pw, p)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return h
}

func TestHashFormat(t *testing.T) {
	tests := []struct {
		name string
		p    password.Params
		re   string
	}{
		{
			name: "cheap",
			p:    cheap,
			// 16 bytes of salt are 22 unpadded base64 characters, 32 of key 43.
			re: `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`,
		},
		{
			name: "other lengths",
			p:    password.Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 16},
			re:   `^\$argon2id\$v=19\$m=128,t=2,p=2\$[A-Za-z0-9+/]{11}\$[A-Za-z0-9+/]{22}$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHash(t, "correct horse", tt.p)
			if !regexp.MustCompile(tt.re).MatchString(h) {
				t.Errorf("Hash = %q, want it to match %s", h, tt.re)
			}
			if strings.Contains(h, "correct horse") {
				t.Error("hash contains the password")
			}
		})
	}
}

func TestHashDefaultParams(t *testing.T) {
	want := password.Params{Memory: 6144, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got := password.DefaultParams(); got != want {
		t.Fatalf("DefaultParams() = %+v, want %+v", got, want)
	}
	h := mustHash(t, "correct horse", password.DefaultParams())
	if !strings.HasPrefix(h, "$argon2id$v=19$m=6144,t=3,p=1$") {
		t.Errorf("Hash with defaults = %q, want the m=6144,t=3,p=1 prefix", h)
	}
	parsed, err := password.Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Params != want {
		t.Errorf("parsed params = %+v, want %+v", parsed.Params, want)
	}
	if !parsed.Matches("correct horse") {
		t.Error("default hash does not match its password")
	}
}

func TestParseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    password.Params
	}{
		{"cheap", cheap},
		{"short salt and key", password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16}},
		{"long salt and key", password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 64}},
		{"two passes two lanes", password.Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const pw = "päss wörd 🔑"
			h := mustHash(t, pw, tt.p)
			for _, stored := range []string{h, h + "\n", "  " + h + "\r\n"} {
				parsed, err := password.Parse(stored)
				if err != nil {
					t.Fatalf("Parse(%q): %v", stored, err)
				}
				if parsed.Params != tt.p {
					t.Errorf("Params = %+v, want %+v", parsed.Params, tt.p)
				}
				if !parsed.Matches(pw) {
					t.Error("Matches(right password) = false")
				}
				if parsed.Matches(pw + " ") {
					t.Error("Matches(wrong password) = true")
				}
			}
		})
	}
}

func TestMatches(t *testing.T) {
	const pw = "Correct Horse 1"
	h, err := password.Parse(mustHash(t, pw, cheap))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		try  string
		want bool
	}{
		{pw, true},
		{"correct horse 1", false},
		{"Correct Horse 1 ", false},
		{"Correct Horse 1\n", false},
		{"Correct Horse ", false},
		{"", false},
		{strings.Repeat(pw, 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.try, func(t *testing.T) {
			if got := h.Matches(tt.try); got != tt.want {
				t.Errorf("Matches(%q) = %v, want %v", tt.try, got, tt.want)
			}
		})
	}
}

func TestHashSalted(t *testing.T) {
	a := mustHash(t, "same password", cheap)
	b := mustHash(t, "same password", cheap)
	if a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
	saltOf := func(h string) string { return strings.Split(h, "$")[4] }
	if saltOf(a) == saltOf(b) {
		t.Errorf("two hashes share the salt %s", saltOf(a))
	}
	for _, h := range []string{a, b} {
		parsed, err := password.Parse(h)
		if err != nil {
			t.Fatal(err)
		}
		if !parsed.Matches("same password") {
			t.Errorf("%s does not match", h)
		}
	}
}

func TestParseLimits(t *testing.T) {
	b64 := base64.RawStdEncoding.EncodeToString
	salt8, key16 := b64(make([]byte, 8)), b64(make([]byte, 16))
	// Only parsed, never hashed: the largest ones would cost 256 MiB.
	tests := []struct {
		name   string
		params string
		want   password.Params
	}{
		{"smallest", "m=8,t=1,p=1", password.Params{Memory: 8, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16}},
		{"largest memory and time", "m=262144,t=64,p=1", password.Params{Memory: 262144, Time: 64, Threads: 1, SaltLen: 8, KeyLen: 16}},
		{"most lanes", "m=2040,t=1,p=255", password.Params{Memory: 2040, Time: 1, Threads: 255, SaltLen: 8, KeyLen: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := "$argon2id$v=19$" + tt.params + "$" + salt8 + "$" + key16
			h, err := password.Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if h.Params != tt.want {
				t.Errorf("Params = %+v, want %+v", h.Params, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	b64 := base64.RawStdEncoding.EncodeToString
	salt, key := b64([]byte("0123456789abcdef")), b64([]byte("0123456789abcdef0123456789abcdef"))
	ok := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	if _, err := password.Parse(ok); err != nil {
		t.Fatalf("the valid base string does not parse: %v", err)
	}
	// A 16-byte salt ends in a character carrying 4 unused bits; setting
	// them gives the same bytes under lenient decoding.
	nonCanonicalSalt := salt[:len(salt)-1] + string(rune(salt[len(salt)-1]+1))
	if _, err := base64.RawStdEncoding.DecodeString(nonCanonicalSalt); err != nil {
		t.Fatalf("test setup: %v", err)
	}

	tests := []struct {
		name string
		s    string
	}{
		{"empty", ""},
		{"only dollars", "$$$$$"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"upper case alg", "$ARGON2ID$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"version 20", "$argon2id$v=20$m=64,t=1,p=1$" + salt + "$" + key},
		{"version not a number", "$argon2id$v=x$m=64,t=1,p=1$" + salt + "$" + key},
		{"version missing", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"version empty", "$argon2id$$m=64,t=1,p=1$" + salt + "$" + key},
		{"params missing", "$argon2id$v=19$" + salt + "$" + key},
		{"hash missing", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"hash empty", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"extra part", ok + "$" + key},
		{"p missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"params reordered", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"params empty", "$argon2id$v=19$$" + salt + "$" + key},
		{"memory huge", "$argon2id$v=19$m=999999999,t=1,p=1$" + salt + "$" + key},
		{"memory just over the limit", "$argon2id$v=19$m=262145,t=1,p=1$" + salt + "$" + key},
		{"memory overflows uint32", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key},
		{"memory negative", "$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key},
		{"memory below 8 per lane", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key},
		{"memory zero", "$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key},
		{"time zero", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"time over the limit", "$argon2id$v=19$m=64,t=65,p=1$" + salt + "$" + key},
		{"lanes zero", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"lanes overflow uint8", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key},
		{"salt bad base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!!!!!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + "$" + key},
		{"salt url alphabet", "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawURLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe}) + "$" + key},
		{"salt non-canonical", "$argon2id$v=19$m=64,t=1,p=1$" + nonCanonicalSalt + "$" + key},
		{"salt empty", "$argon2id$v=19$m=64,t=1,p=1$$" + key},
		{"salt 7 bytes", "$argon2id$v=19$m=64,t=1,p=1$" + b64([]byte("1234567")) + "$" + key},
		{"hash bad base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "*"},
		{"hash 15 bytes", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64([]byte("0123456789abcde"))},
		{"space inside", "$argon2id$v=19$m=64,t=1,p=1$" + salt + " $" + key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := password.Parse(tt.s)
			if !errors.Is(err, password.ErrBadHash) {
				t.Fatalf("Parse(%q) = %+v, %v; want an error wrapping ErrBadHash", tt.s, h.Params, err)
			}
		})
	}
}
