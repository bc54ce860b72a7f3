package clients_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camd/platform/clients"
	"camd/platform/datadir"
)

// TestCheckFileDamaged: a damaged clients.json is moved aside intact, with an
// error naming it, and the store then opens with no clients; a sound or
// missing file is left alone.
func TestCheckFileDamaged(t *testing.T) {
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	for _, tc := range []struct {
		name     string
		contents string // "" with missing: no file
		missing  bool
		damaged  bool
	}{
		{name: "missing", missing: true},
		{name: "sound", contents: `[{"name":"porch","id":"abc","scopes":["ack"],"created_at":"2026-01-01T00:00:00Z"}]` + "\n"},
		{name: "no clients", contents: "[]\n"},
		{name: "null", contents: "null"},
		{name: "empty", contents: "", damaged: true},
		{name: "white space", contents: " \n", damaged: true},
		{name: "cut short", contents: `[{"name":"porch","id":"ab`, damaged: true},
		{name: "an object", contents: `{"porch":{}}`, damaged: true},
		{name: "no id", contents: `[{"name":"porch"}]`, damaged: true},
		{name: "a bad name", contents: `[{"name":"a b","id":"x"}]`, damaged: true},
		{name: "binary", contents: "\xff\x00\x01", damaged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := datadir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			path := dir.Join(clients.FileName)
			if !tc.missing {
				if err := os.WriteFile(path, []byte(tc.contents), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			if err := clients.CheckFile(dir, slog.New(slog.NewTextHandler(&logs, nil)), now); err != nil {
				t.Fatalf("CheckFile: %v", err)
			}
			moved, _ := filepath.Glob(path + ".bad-*")
			if !tc.damaged {
				if len(moved) != 0 || logs.Len() != 0 {
					t.Errorf("a sound file was moved (%v) or reported: %s", moved, logs.String())
				}
				if got, err := os.ReadFile(path); !tc.missing && (err != nil || string(got) != tc.contents) {
					t.Errorf("a sound file changed: %q %v", got, err)
				}
				open(t, dir)
				return
			}
			want := path + ".bad-1800000000"
			if len(moved) != 1 || moved[0] != want {
				t.Fatalf("moved aside as %v, want %s", moved, want)
			}
			if got, _ := os.ReadFile(want); string(got) != tc.contents {
				t.Errorf("moved file holds %q, want the damaged contents", got)
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, path) || !strings.Contains(l, want) {
				t.Errorf("log does not name the file and where it went: %s", l)
			}
			s := open(t, dir)
			if list, err := s.List(); err != nil || len(list) != 0 {
				t.Errorf("after the move: %v %v, want no clients", list, err)
			}
		})
	}
}
