// Package secret provides camd's token signing secret: 32 random bytes made on
// first start, kept in the data directory and reused on every later start.
//
// Deleting the file and restarting rotates the secret and so invalidates every
// token signed with the old one.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"time"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// Size is the length of the secret in bytes: RFC 7518 section 3.2 requires an
// HS256 key at least as long as the hash output, 256 bits.
const Size = 32

// FileName is the secret's name inside the data directory.
const FileName = "secret.bin"

// ErrBadSize reports a secret file that is not exactly Size bytes long.
var ErrBadSize = errors.New("secret must be exactly 32 bytes")

// LoadOrCreate returns the secret kept in dir, creating it when missing.
//
// A file of the wrong size is never used as a key: it is moved aside as
// secret.bin.bad-<unix time>, an error is logged and a fresh secret is made.
// A file readable by group or others is tightened to 0600 with a warning.
// Several processes starting at once on an empty directory end up with the
// same secret.
func LoadOrCreate(dir datadir.Dir, log *slog.Logger, now func() time.Time) ([]byte, error) {
	unlock, err := dir.Lock()
	if err != nil {
		return nil, fmt.Errorf("load secret: %w", err)
	}
	defer unlock()

	path := dir.Join(FileName)
	// A few rounds at most: move a bad file aside, create (or lose the race to
	// a process without the lock), read the winner's file.
	for range 3 {
		key, err := readFile(path)
		switch {
		case err == nil:
			if err := atomicfile.Tighten(path, "signing secret", log); err != nil {
				return nil, err
			}
			return key, nil
		case errors.Is(err, fs.ErrNotExist):
			key, err := create(path)
			if errors.Is(err, fs.ErrExist) {
				continue // another process won the race; read its secret
			}
			if err != nil {
				return nil, err
			}
			log.Info("created signing secret", "path", path)
			return key, nil
		case errors.Is(err, ErrBadSize):
			bad, mvErr := atomicfile.MoveAside(path, now())
			if mvErr != nil {
				return nil, mvErr
			}
			log.Error("signing secret file was unusable; moved it aside and made a new secret (tokens issued before are now invalid)",
				"path", path, "moved_to", bad, "err", err)
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("load secret %s: gave up after repeated changes by another process", path)
}

// LoadExternal reads a secret provided from outside camd, such as a file
// mounted into several staging replicas. It must hold exactly Size bytes and
// is never written, moved or re-moded.
func LoadExternal(path string, log *slog.Logger) ([]byte, error) {
	key, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		log.Warn("external secret file is readable by group or others", "path", path, "mode", info.Mode().Perm().String())
	}
	return key, nil
}

// readFile reads a secret file, reading at most one byte past Size so a huge
// file costs nothing.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", path, err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, Size+1))
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", path, err)
	}
	if len(buf) != Size {
		size := strconv.Itoa(len(buf))
		if len(buf) > Size {
			size = "more than " + strconv.Itoa(Size)
		}
		return nil, fmt.Errorf("read secret %s: %w, found %s", path, ErrBadSize, size)
	}
	return buf, nil
}

func create(path string) ([]byte, error) {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	if err := atomicfile.Create(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	return key, nil
}

// Rotate replaces the secret in dir with a fresh one and returns it. Every
// token signed with the old secret is refused from then on.
func Rotate(dir datadir.Dir) ([]byte, error) {
	unlock, err := dir.Lock()
	if err != nil {
		return nil, fmt.Errorf("rotate secret: %w", err)
	}
	defer unlock()
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("rotate secret: %w", err)
	}
	if err := atomicfile.WriteFile(dir.Join(FileName), key, 0o600); err != nil {
		return nil, fmt.Errorf("rotate secret: %w", err)
	}
	return key, nil
}

// fingerprintLabel separates the fingerprint's hash from any other use of
// the key.
const fingerprintLabel = "camd secret fingerprint v1\x00"

// Fingerprint returns a short name for a secret that tells two secrets apart
// (after a rotation, or between replicas) without revealing anything usable:
// the first 8 bytes of SHA-256 over a fixed label and the key, in hex.
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(append([]byte(fingerprintLabel), key...))
	return hex.EncodeToString(sum[:8])
}
