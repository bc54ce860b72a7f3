package password

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckFilesDamaged: a damaged password.hash refuses the start with an
// error naming it and camd passwd, and is left as it is; a damaged
// password.changed is moved aside and replaced by a fresh version, so the
// password still checks and every earlier version is refused.
func TestCheckFilesDamaged(t *testing.T) {
	good, err := Hash("the password", cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	goodChange := `{"at":"2026-01-01T00:00:00Z","version":"V1"}` + "\n"
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	for _, tc := range []struct {
		name          string
		hash, changed *string // nil: no file
		hashDamaged   bool
		changeDamaged bool
	}{
		{name: "first boot"},
		{name: "sound", hash: strp(good + "\n"), changed: &goodChange},
		{name: "never changed", hash: strp(good + "\n")},
		{name: "hash CRLF", hash: strp(good + "\r\n")},
		{name: "hash empty", hash: strp(""), hashDamaged: true},
		{name: "hash a newline", hash: strp("\n"), hashDamaged: true},
		{name: "hash cut in half", hash: strp(good[:len(good)/2]), hashDamaged: true},
		{name: "hash cut inside the key", hash: strp(good[:len(good)-8]), hashDamaged: true},
		{name: "hash without its newline", hash: strp(good), hashDamaged: true},
		{name: "hash a password", hash: strp("hunter2\n"), hashDamaged: true},
		{name: "hash damaged, change too", hash: strp(""), changed: strp(""), hashDamaged: true},
		{name: "change empty", hash: strp(good + "\n"), changed: strp(""), changeDamaged: true},
		{name: "change cut short", hash: strp(good + "\n"), changed: strp(goodChange[:20]), changeDamaged: true},
		{name: "change no version", hash: strp(good + "\n"), changed: strp(`{"at":"2026-01-01T00:00:00Z"}`), changeDamaged: true},
		{name: "change a list", hash: strp(good + "\n"), changed: strp(`[]`), changeDamaged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newTestStore(t, 1)
			write := func(name string, v *string) {
				if v != nil {
					if err := os.WriteFile(d.Join(name), []byte(*v), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(FileName, tc.hash)
			write(ChangedFileName, tc.changed)
			var logs bytes.Buffer
			err := CheckFiles(d, slog.New(slog.NewTextHandler(&logs, nil)), now)
			if tc.hashDamaged {
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), d.Join(FileName)) || !strings.Contains(err.Error(), "camd passwd") {
					t.Fatalf("CheckFiles = %v, want ErrDamaged naming %s and camd passwd", err, d.Join(FileName))
				}
				if got, _ := os.ReadFile(d.Join(FileName)); string(got) != *tc.hash {
					t.Errorf("the damaged hash was changed to %q", got)
				}
				// The recovery it names: Set replaces the file.
				mustSet(t, s, "a new password")
				if err := CheckFiles(d, slog.New(slog.DiscardHandler), now); err != nil {
					t.Fatalf("after Set: %v", err)
				}
				if !mustCheck(t, s, Owner, "a new password") {
					t.Error("the new password does not check")
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckFiles: %v", err)
			}
			moved, _ := filepath.Glob(d.Join(ChangedFileName) + ".bad-*")
			if !tc.changeDamaged {
				if len(moved) != 0 || logs.Len() != 0 {
					t.Errorf("sound files were moved (%v) or reported: %s", moved, logs.String())
				}
				if tc.changed != nil {
					if got, _ := os.ReadFile(d.Join(ChangedFileName)); string(got) != *tc.changed {
						t.Errorf("a sound change record changed: %q", got)
					}
				}
				return
			}
			want := d.Join(ChangedFileName) + ".bad-1800000000"
			if len(moved) != 1 || moved[0] != want {
				t.Fatalf("moved aside as %v, want %s", moved, want)
			}
			if got, _ := os.ReadFile(want); string(got) != *tc.changed {
				t.Errorf("moved file holds %q", got)
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, d.Join(ChangedFileName)) || !strings.Contains(l, want) {
				t.Errorf("log does not name the file and where it went: %s", l)
			}
			ch, err := s.Changed()
			if err != nil || ch.Version == "" || ch.Version == "V1" || !ch.At.Equal(now()) {
				t.Errorf("the fresh change record: %+v %v, want a new version made now", ch, err)
			}
			raw, _ := os.ReadFile(d.Join(ChangedFileName))
			var back Change
			if json.Unmarshal(raw, &back) != nil || back.Version != ch.Version {
				t.Errorf("the fresh record does not parse: %q", raw)
			}
			if !mustCheck(t, s, Owner, "the password") {
				t.Error("the password no longer checks after the move")
			}
		})
	}
}

func strp(s string) *string { return &s }
