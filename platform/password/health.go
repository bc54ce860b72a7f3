package password

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// ErrDamaged reports a password.hash that camd cannot use: empty, cut
// short, or not an argon2id hash.
var ErrDamaged = errors.New("damaged")

// CheckFiles inspects the owner password's files at start, so that a file
// damaged while camd was stopped is reported then, naming it, rather than
// turning every login into a 500. The rule per file, as for secret.bin:
//
//   - password.hash, damaged: camd refuses to start (fail closed), with an
//     error that names the file and the recovery, `camd passwd`, which
//     replaces the file whatever it holds. Starting as on first boot instead
//     would print a fresh password to a console that nobody may watch on a
//     cam in service, and leave the owner locked out in the meantime.
//   - password.changed, damaged: it is moved aside as
//     password.changed.bad-<unix time> and replaced by a fresh random
//     version, which refuses every owner token issued before (fail safe);
//     the password itself is unchanged and login works. Deleting it instead
//     would make the version empty again, which would revive tokens issued
//     before the first password change.
//
// A missing file is not damage: EnsureInitial makes the first password, and
// no change record means the password was never changed. now dates the
// name of a file moved aside and the fresh change record.
func CheckFiles(dir datadir.Dir, log *slog.Logger, now func() time.Time) error {
	unlock, err := dir.Lock()
	if err != nil {
		return fmt.Errorf("check owner password files: %w", err)
	}
	defer unlock()
	if err := checkHash(dir.Join(FileName), dir.Path()); err != nil {
		return err
	}
	return checkChanged(dir.Join(ChangedFileName), log, now)
}

func checkHash(path, dirPath string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read owner password %s: %w", path, err)
	}
	// camd writes the hash as one line, atomically: a file without its
	// newline was cut short, perhaps inside the key, where it would still
	// parse and every login would be refused.
	var what string
	if len(bytes.TrimSpace(raw)) == 0 {
		what = fmt.Sprintf("empty (%d bytes)", len(raw))
	} else if _, err := Parse(string(raw)); err != nil {
		what = err.Error()
	} else if !bytes.HasSuffix(raw, []byte("\n")) {
		what = "cut short: it does not end in a newline, as camd writes it"
	} else {
		return nil
	}
	return fmt.Errorf("owner password %s is %w: %s; camd will not start without a usable one: set a new password with `camd passwd --data-dir %s`, which replaces the file", path, ErrDamaged, what, dirPath)
}

func checkChanged(path string, log *slog.Logger, now func() time.Time) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read owner password change %s: %w", path, err)
	}
	if _, ok := parseChange(raw); ok {
		return nil
	}
	bad, err := atomicfile.MoveAside(path, now())
	if err != nil {
		return fmt.Errorf("move aside the damaged owner password change %s: %w", path, err)
	}
	fresh, err := json.Marshal(Change{At: now().UTC(), Version: rand.Text()})
	if err != nil {
		return fmt.Errorf("owner password change: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(fresh, '\n'), 0o600); err != nil {
		return fmt.Errorf("replace the damaged owner password change %s: %w", path, err)
	}
	log.Error("owner password change record was damaged; moved it aside and wrote a new version: owner tokens issued before are refused, the password is unchanged",
		"path", path, "moved_to", bad)
	return nil
}
