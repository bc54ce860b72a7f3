package clients_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"camd/platform/clients"
	"camd/platform/datadir"
)

func open(t *testing.T, dir datadir.Dir) *clients.Store {
	t.Helper()
	s, err := clients.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAddValidate(t *testing.T) {
	dir, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		scopes []string
		err    error
		want   []string
	}{
		{"porch-esp32", []string{"ack"}, nil, []string{"ack"}},
		{"cloud_worker.1", []string{"snapshot"}, nil, []string{"snapshot"}},
		// Defaults and known scopes are the auth service's (auth tests).
		{"no-scope", nil, clients.ErrNoScope, nil},
		{"reader", []string{"ack:read", "ack", "ack"}, nil, []string{"ack", "ack:read"}},
		{"porch-esp32", []string{"ack"}, clients.ErrExists, nil},
		{"", []string{"ack"}, clients.ErrBadName, nil},
		{"has space", []string{"ack"}, clients.ErrBadName, nil},
		{"slash/name", []string{"ack"}, clients.ErrBadName, nil},
		{strings.Repeat("a", 64), []string{"ack"}, nil, []string{"ack"}},
		{strings.Repeat("a", 65), []string{"ack"}, clients.ErrBadName, nil},
	}
	for _, tc := range tests {
		c, err := s.Add(tc.name, tc.scopes, now)
		if !errors.Is(err, tc.err) {
			t.Errorf("Add(%q, %v) error %v, want %v", tc.name, tc.scopes, err, tc.err)
			continue
		}
		if err == nil && (strings.Join(c.Scopes, " ") != strings.Join(tc.want, " ") || c.ID == "" || !c.CreatedAt.Equal(now)) {
			t.Errorf("Add(%q) = %+v, want scopes %v, an id and the time", tc.name, c, tc.want)
		}
	}
	info, err := os.Stat(dir.Join(clients.FileName))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("clients.json: %v %v, want mode 0600", info, err)
	}
	raw, _ := os.ReadFile(dir.Join(clients.FileName))
	if strings.Contains(string(raw), "eyJ") {
		t.Error("clients.json holds a token")
	}
}

// TestSeesOtherWriters: a store sees additions and removals made through
// another store on the same directory (the offline CLI) without reopening.
func TestSeesOtherWriters(t *testing.T) {
	dir, _ := datadir.Open(t.TempDir())
	server, cli := open(t, dir), open(t, dir)
	c, err := cli.Add("worker", []string{"ack"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !server.Valid("worker", c.ID) {
		t.Fatal("the server does not see a client added by another writer")
	}
	if server.Valid("worker", "other-id") || server.Valid("nobody", c.ID) {
		t.Error("Valid accepts a wrong id or name")
	}
	if err := cli.Remove("worker"); err != nil {
		t.Fatal(err)
	}
	if server.Valid("worker", c.ID) {
		t.Error("the server still accepts a client removed by another writer")
	}
	if err := server.Remove("worker"); !errors.Is(err, clients.ErrNotFound) {
		t.Errorf("Remove of a removed client: %v", err)
	}
	// Both writers' changes survive: neither overwrites the other's.
	server.Add("a", []string{"ack"}, time.Now())
	cli.Add("b", []string{"ack"}, time.Now())
	list, _ := open(t, dir).List()
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Errorf("List() = %+v, want a and b", list)
	}
}

func TestUsage(t *testing.T) {
	dir, _ := datadir.Open(t.TempDir())
	s := open(t, dir)
	s.Add("kept", []string{"ack"}, time.Now())
	s.Add("gone", []string{"ack"}, time.Now())
	at := time.Date(2027, 5, 6, 7, 8, 9, 0, time.UTC)
	s.Used("kept", "192.0.2.4", at)
	s.Used("gone", "192.0.2.5", at)
	s.Remove("gone")
	if err := s.SaveUsage(); err != nil {
		t.Fatal(err)
	}
	list, _ := open(t, dir).List()
	if len(list) != 1 || list[0].LastUsed == nil || list[0].LastUsed.Addr != "192.0.2.4" || !list[0].LastUsed.At.Equal(at) {
		t.Errorf("after reopening: %+v", list)
	}
	raw, _ := os.ReadFile(dir.Join(clients.UsageFileName))
	if strings.Contains(string(raw), "gone") {
		t.Errorf("usage keeps a removed client: %s", raw)
	}
}

func TestDamagedFileFailsClosed(t *testing.T) {
	dir, _ := datadir.Open(t.TempDir())
	s := open(t, dir)
	c, _ := s.Add("worker", []string{"ack"}, time.Now())
	if err := os.WriteFile(dir.Join(clients.FileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.Valid("worker", c.ID) {
		t.Error("a damaged clients.json still admits the client")
	}
	if _, err := clients.Open(dir); err == nil {
		t.Error("Open accepted a damaged clients.json")
	}
}

// TestValidateNameRule: the hand-written check accepts exactly what the
// rule ^[A-Za-z0-9._-]{1,64}$ does: every single byte, and names at and
// around the length limit.
func TestValidateNameRule(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	names := []string{"", strings.Repeat("a", 64), strings.Repeat("a", 65), "porch-esp32", "a.b_c-D9", "é", "a\x00", "../x"}
	for b := range 256 {
		names = append(names, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for _, n := range names {
		if got, want := clients.ValidateName(n) == nil, rule.MatchString(n); got != want {
			t.Errorf("ValidateName(%q) accepts: %v, the rule: %v", n, got, want)
		}
	}
}
