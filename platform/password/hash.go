// Package password hashes and checks the owner password with argon2id and
// keeps the hash in the data directory. The password itself is never stored.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters. They are written into every stored
// hash (PHC string format), so raising them later keeps old hashes valid.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams returns the parameters that suit a 1 GHz ARMv7 cam with little memory: one check needs
// 6 MiB and, by the figures in docs/performance.md, a few hundred milliseconds there
// (about 10 ms on a desktop x86-64 core). One lane, because a cam has one or
// two slow cores that are busy encoding video.
func DefaultParams() Params {
	return Params{Memory: 6 * 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Hash returns the PHC-format argon2id hash of password:
// $argon2id$v=19$m=6144,t=3,p=1$<salt>$<hash> (unpadded standard base64).
func Hash(password string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// ErrBadHash reports a stored hash that cannot be parsed.
var ErrBadHash = errors.New("malformed password hash")

// Hashed is a parsed PHC argon2id hash.
type Hashed struct {
	Params Params
	salt   []byte
	key    []byte
}

// limits on parameters read back from disk, so that a tampered hash file
// cannot make camd allocate gigabytes or spin for minutes.
const (
	maxMemoryKiB = 256 * 1024
	maxTime      = 64
)

// Parse reads a PHC argon2id string as written by Hash.
func Parse(s string) (Hashed, error) {
	parts := strings.Split(strings.TrimSpace(s), "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Hashed{}, fmt.Errorf("%w: not an argon2id PHC string", ErrBadHash)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Hashed{}, fmt.Errorf("%w: unsupported version %q", ErrBadHash, parts[2])
	}
	var p Params
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || n != 3 {
		return Hashed{}, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || p.Threads < 1 {
		return Hashed{}, fmt.Errorf("%w: parameters out of range %q", ErrBadHash, parts[3])
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Hashed{}, fmt.Errorf("%w: salt", ErrBadHash)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return Hashed{}, fmt.Errorf("%w: hash", ErrBadHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return Hashed{Params: p, salt: salt, key: key}, nil
}

// Matches reports whether password hashes to h, comparing in constant time.
func (h Hashed) Matches(password string) bool {
	got := argon2.IDKey([]byte(password), h.salt, h.Params.Time, h.Params.Memory, h.Params.Threads, h.Params.KeyLen)
	return subtle.ConstantTimeCompare(got, h.key) == 1
}
