package e2e

// Suite 4 of issue 7, crash safety: the real binary is killed with SIGKILL at
// random moments while it makes its first secret, changes the password,
// creates and revokes clients, rotates the secret and records acks. Every
// start after a kill must find a valid data directory that still holds
// everything a client was told had succeeded.
//
// "Acknowledged" means the client saw the success: the HTTP status (200, 201
// or 204) with its whole body, or the offline command exiting 0. An
// operation whose answer never came is "in flight": either outcome is
// allowed, but exactly one, and the next start must act on what the disk
// holds. Killing a process is not a power cut (the page cache survives), so
// this proves the ordering of writes and renames, not the fsyncs.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"camd/internal/camdtest"
	"camd/modules/ack/ackstore"
	"camd/platform/atomicfile"
	"camd/platform/clients"
	"camd/platform/ntpclock"
	"camd/platform/password"
	"camd/platform/secret"
	"camd/platform/tlscert"
	"camd/token"
)

// Environment of the crash harness.
const (
	crashSeedEnv   = "CAMD_CRASH_SEED"   // replay a run: the seed it logged
	crashRoundsEnv = "CAMD_CRASH_ROUNDS" // rounds per scenario, overriding the modes
	crashLongEnv   = "CAMD_TEST_LONG"    // 1: the long mode, for local runs
)

// Rounds per scenario. Ten scenarios: 60 kills in CI, 400 in the long mode.
const (
	crashRoundsShort = 6
	crashRoundsLong  = 40
)

// crashWait bounds every wait on a process or on the goroutines driving it.
const crashWait = 20 * time.Second

// crashScenario is one kind of work that camd is killed in the middle of.
type crashScenario struct {
	name string
	// maxDelay bounds the random time from the start of the work to the
	// kill. Each is a little longer than the work takes here, so kills
	// land in every step and sometimes after the end.
	maxDelay time.Duration
	// fresh: every round on a new, empty data directory (first start).
	fresh bool
	// fat: the data directory is on a FAT file system (FUSE), as on a
	// cam's SD card, where files are created by rename, not link.
	fat bool
	// tls: camd runs with --tls auto and makes its certificate too.
	tls bool
	// round verifies what the previous kill left (h.restart), starts the
	// work and kills camd as h.kill says.
	round func(h *crashHarness)
}

// TestCrash is the kill -9 harness. CAMD_CRASH_SEED replays the kill plans
// and the choice of operations; scheduling still varies between runs.
func TestCrash(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
		seed = v
	}
	rounds := crashRoundsShort
	if os.Getenv(crashLongEnv) == "1" {
		rounds = crashRoundsLong
	}
	if s := os.Getenv(crashRoundsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("%s=%q: want a positive integer", crashRoundsEnv, s)
		}
		rounds = v
	}
	scenarios := []crashScenario{
		// Start to listening takes 15 to 30 ms here, 10 or more of them
		// hashing the initial password: kills land before the directory
		// exists, around the secret, during the hash and after listening.
		{name: "first start", maxDelay: 30 * time.Millisecond, fresh: true, round: crashFirstStart},
		// Each change is a Basic check and a new hash, about 25 ms.
		{name: "password API", maxDelay: 60 * time.Millisecond, round: crashPasswordAPI},
		// camd passwd runs in 40 to 60 ms, most of it the hash.
		{name: "passwd command", maxDelay: 70 * time.Millisecond, round: crashPasswdCommand},
		{name: "clients API", maxDelay: 80 * time.Millisecond, round: crashClientsAPI},
		// camd client add or revoke runs in 10 to 20 ms.
		{name: "client command", maxDelay: 25 * time.Millisecond, round: crashClientCommand},
		{name: "rotate secret", maxDelay: 60 * time.Millisecond, round: crashRotate},
		// An ack is one write and fsync, under a millisecond.
		{name: "acks", maxDelay: 50 * time.Millisecond, round: crashAcks},
		// The certificate adds a key and a certificate file to the start.
		{name: "first start with TLS", maxDelay: 40 * time.Millisecond, fresh: true, tls: true, round: crashFirstStart},
		{name: "first start on FAT", maxDelay: 30 * time.Millisecond, fresh: true, fat: true, round: crashFirstStart},
		{name: "acks on FAT", maxDelay: 50 * time.Millisecond, fat: true, round: crashAcks},
	}
	t.Logf("seed %d, %d rounds per scenario, %d kills in all (replay: %s=%d; long mode: %s=1)",
		seed, rounds, rounds*len(scenarios), crashSeedEnv, seed, crashLongEnv)
	camd(t) // build once, outside the timings
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			begin := time.Now()
			h := &crashHarness{t: t, rng: rand.New(rand.NewPCG(seed, uint64(i))), stats: map[string]int{}, tls: sc.tls}
			if sc.fat {
				h.card = mountFAT(t) // skips without dosfstools and fusefat
			}
			if !sc.fresh {
				h.setup()
			}
			for r := range rounds {
				h.round = r
				h.kill = h.plan(sc.maxDelay)
				sc.round(h)
				if t.Failed() {
					t.Fatalf("round %d failed (kill %+v); replay with %s=%d", r, h.kill, crashSeedEnv, seed)
				}
			}
			if !sc.fresh {
				h.restart().kill() // the last kill is checked too
			}
			keys := make([]string, 0, len(h.stats))
			for k := range h.stats {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "; %s: %d", k, h.stats[k])
			}
			t.Logf("%d rounds in %v%s", rounds, time.Since(begin).Round(time.Millisecond), b.String())
		})
	}
}

// crashTok is what the next start must make of a token.
type crashTok int

const (
	tokValid  crashTok = iota // nothing that refuses it happened: must be accepted
	tokEither                 // a change that refuses it was in flight
	tokDead                   // an acknowledged change refuses it
)

// crashClientState is what the harness knows of one client.
type crashClientState int

const (
	clientCreating crashClientState = iota // creation in flight: may exist
	clientLive                             // creation acknowledged or seen: must exist
	clientRevoking                         // revocation in flight: may exist
	clientRevoked                          // revocation acknowledged: must never return
)

type crashClient struct {
	token string // "" when the creation's answer never came
	tok   crashTok
	state crashClientState
}

// crashAck is one POST /api/ack of a stream.
type crashAck struct {
	count      uint64
	user       string
	start, end time.Time // end is set only when answered 200
	ok         bool
}

// crashHarness drives one scenario on one data directory and holds the
// model: what the data directory must contain after the next kill.
type crashHarness struct {
	t     *testing.T
	rng   *rand.Rand
	card  string // the FAT mount holding the data directories; "" for none
	tls   bool   // --tls auto
	dirs  int    // data directories made
	dir   string
	round int
	kill  crashKill      // when this round kills camd
	stats map[string]int // outcomes, logged at the end

	names  int    // clients are c1, c2, ...: never a name twice
	counts uint64 // ack counts, unique across rounds

	password string // the acknowledged owner password; "" when unknown
	pending  string // a password change in flight
	replaced string // a password replaced by an acknowledged change: must be refused

	ownerTok string // an owner token from the last start
	owner    crashTok

	fingerprint string // of the TLS certificate at the last start

	secret        []byte   // secret.bin as last acknowledged
	secretPending bool     // a rotation was in flight
	oldSecrets    [][]byte // secrets replaced: none may come back

	clients map[string]*crashClient
	acker   string // a client token used for acks

	lastAck *crashAck  // the ack stored at the last start; nil: none
	acks    []crashAck // acks sent since then
}

// setup makes a data directory with a password, a client and a token, as
// the base the scenarios change. camd is then killed while idle.
func (h *crashHarness) setup() {
	h.t.Helper()
	h.reset()
	p := start(h.t, h.dir)
	if p.Password == "" {
		h.t.Fatal("first start printed no initial password")
	}
	h.password = p.Password
	h.ownerTok, h.owner = p.login(h.password), tokValid
	h.acker = p.addClient(h.password, `{"name":"acker"}`)
	h.clients["acker"] = &crashClient{token: h.acker, tok: tokValid, state: clientLive}
	h.secret = h.readSecret()
	p.kill()
}

// reset forgets the model, for a new data directory that does not exist
// yet.
func (h *crashHarness) reset() {
	h.dirs++
	if h.card != "" {
		h.dir = filepath.Join(h.card, "data"+strconv.Itoa(h.dirs))
	} else {
		h.dir = filepath.Join(h.t.TempDir(), "data")
	}
	h.password, h.pending, h.replaced = "", "", ""
	h.ownerTok, h.owner = "", tokValid
	h.secret, h.secretPending, h.oldSecrets = nil, false, nil
	h.fingerprint = ""
	h.clients = map[string]*crashClient{}
	h.lastAck, h.acks = nil, nil
}

func (h *crashHarness) readSecret() []byte {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, secret.FileName))
	if err != nil {
		h.t.Fatalf("round %d: %v", h.round, err)
	}
	return b
}

// tokensChanged records an operation that refuses tokens (the owner's
// only, for a password change): acknowledged, the next start must refuse
// them; in flight, it may.
func (h *crashHarness) tokensChanged(acked bool, ownerOnly bool) {
	mark := func(s *crashTok) {
		switch {
		case acked:
			*s = tokDead
		case *s == tokValid:
			*s = tokEither
		}
	}
	mark(&h.owner)
	if ownerOnly {
		return
	}
	for _, c := range h.clients {
		mark(&c.tok)
	}
}

// restart is the next start after a kill. It checks the data directory and
// every acknowledged operation, resolves the ones in flight from what the
// start found, and returns the running camd.
func (h *crashHarness) restart() *proc {
	t := h.t
	t.Helper()
	p := start(t, h.dir, h.serveFlags()...)
	if h.tls {
		m := fingerprintRE.FindStringSubmatch(p.logs())
		if m == nil {
			t.Fatalf("round %d: no TLS fingerprint logged:\n%s", h.round, p.logs())
		}
		h.fingerprint, p.client = m[1], pinned(m[1])
	}
	disk := h.checkDir()
	for _, line := range strings.Split(p.logs(), "\n") {
		// An error at start means something was found damaged and moved
		// aside, or a repair failed.
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("round %d: error logged at start after a kill: %s", h.round, line)
		}
	}
	if p.Password != "" && h.password != "" {
		t.Errorf("round %d: a start printed a new initial password though one was acknowledged", h.round)
	}

	h.checkSecret(disk)
	if h.password == "" && p.Password != "" {
		h.password = p.Password
	}
	if h.password == "" {
		t.Fatalf("round %d: no start printed the password that is stored: the owner is locked out", h.round)
	}
	fresh := h.checkPassword(p)
	h.checkToken(p, disk, "owner token", h.ownerTok, h.owner)
	h.checkClients(p, disk)
	h.checkAcks(p, fresh)
	h.ownerTok, h.owner = fresh, tokValid
	return p
}

// serveFlags are the flags of every camd serve in the scenario.
func (h *crashHarness) serveFlags() []string {
	if h.tls {
		return []string{"--tls=auto"}
	}
	return nil
}

// crashDisk is what checkDir read from the data directory.
type crashDisk struct {
	secret  []byte
	version string            // password.changed's version; "" without one
	clients map[string]string // name to id, from clients.json
}

// crashFiles are the only names a data directory may hold after a start,
// with their modes: anything else is a stray temporary or a file moved
// aside as damaged.
var crashFiles = map[string]fs.FileMode{
	secret.FileName:            0o600,
	password.FileName:          0o600,
	password.ChangedFileName:   0o600,
	"ack/" + ackstore.FileName: 0o600, // in the ack module's own directory
	clients.FileName:           0o600,
	clients.UsageFileName:      0o600,
	ntpclock.LastGoodFileName:  0o600,
	tlscert.CertFileName:       0o644,
	tlscert.KeyFileName:        0o600,
	".lock":                    0o600, // datadir.Lock's flock file
}

// crashDirs are the only directories it may hold: the modules' own.
var crashDirs = map[string]fs.FileMode{"ack": 0o700}

// checkDir lists the data directory of a running camd that has not been
// sent a request yet, so nothing is being written, and parses every file.
func (h *crashHarness) checkDir() crashDisk {
	t := h.t
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("round %d: "+format, append([]any{h.round}, args...)...)
	}
	info, err := os.Stat(h.dir)
	if err != nil {
		t.Fatalf("round %d: %v", h.round, err)
	}
	// FAT keeps no Unix modes: the mount options decide them.
	fat := h.card != ""
	if !fat && info.Mode().Perm() != 0o700 {
		fail("data directory mode %v, want 0700", info.Mode().Perm())
	}
	var list func(rel string)
	list = func(rel string) {
		entries, err := os.ReadDir(filepath.Join(h.dir, rel))
		if err != nil {
			t.Fatalf("round %d: %v", h.round, err)
		}
		for _, e := range entries {
			name := path.Join(rel, e.Name())
			fi, err := e.Info()
			if err != nil {
				fail("%v", err)
				continue
			}
			if want, ok := crashDirs[name]; ok && fi.IsDir() {
				if !fat && fi.Mode().Perm() != want {
					fail("%s: mode %v, want a directory %v", name, fi.Mode(), want)
				}
				list(name)
				continue
			}
			want, known := crashFiles[name]
			if !known {
				fail("stray file %q in the data directory after a start", name)
				continue
			}
			if !fi.Mode().IsRegular() || (!fat && fi.Mode().Perm() != want) {
				fail("%s: mode %v, want a regular file %v", name, fi.Mode(), want)
			}
		}
	}
	list("")

	read := func(name string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(h.dir, name))
		if err != nil && !os.IsNotExist(err) {
			fail("%v", err)
		}
		return b, err == nil
	}
	var d crashDisk
	if b, ok := read(secret.FileName); !ok || len(b) != secret.Size {
		fail("secret.bin: %d bytes (present %v), want %d", len(b), ok, secret.Size)
	} else {
		d.secret = b
	}
	if b, ok := read(password.FileName); !ok {
		fail("no password.hash after a start")
	} else if _, err := password.Parse(string(b)); err != nil {
		fail("password.hash %q: %v", b, err)
	}
	if b, ok := read(password.ChangedFileName); ok {
		var ch password.Change
		if err := json.Unmarshal(b, &ch); err != nil || ch.Version == "" {
			fail("password.changed %q: not a change (%v)", b, err)
		}
		d.version = ch.Version
	}
	d.clients = map[string]string{}
	if b, ok := read(clients.FileName); ok {
		var list []clients.Client
		if err := json.Unmarshal(b, &list); err != nil {
			fail("clients.json %q: %v", b, err)
		}
		for _, c := range list {
			if clients.ValidateName(c.Name) != nil || c.ID == "" || len(c.Scopes) == 0 || c.CreatedAt.IsZero() {
				fail("clients.json holds a damaged client %+v", c)
			}
			if _, dup := d.clients[c.Name]; dup {
				fail("clients.json holds %s twice", c.Name)
			}
			d.clients[c.Name] = c.ID
		}
	}
	crt, crtOK := read(tlscert.CertFileName)
	key, keyOK := read(tlscert.KeyFileName)
	switch {
	case crtOK != keyOK:
		fail("tls.crt present %v, tls.key present %v: want both or neither", crtOK, keyOK)
	case crtOK != h.tls:
		fail("TLS certificate present %v with --tls auto %v", crtOK, h.tls)
	case crtOK:
		if _, err := tls.X509KeyPair(crt, key); err != nil {
			fail("tls.crt and tls.key are not a pair: %v", err)
		}
	}
	if b, ok := read(filepath.Join("ack", ackstore.FileName)); ok {
		var a ackstore.Ack
		if err := json.Unmarshal(b, &a); err != nil || a.User == "" || a.AckedAt.IsZero() {
			fail("ack.json %q: not an ack (%v)", b, err)
		}
	}
	return d
}

// accepts says whether the data directory accepts tok: signed with its
// secret, and for the owner issued under the current password version, for
// a client naming the id the client has now. It mirrors the server's checks
// so a start can be held to what its disk says.
func (d crashDisk) accepts(tok string) (bool, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false, fmt.Errorf("token %q: not three segments", tok)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false, fmt.Errorf("token signature: %w", err)
	}
	mac := hmac.New(sha256.New, d.secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false, fmt.Errorf("token payload: %w", err)
	}
	var c struct{ Sub, Jti, Pwv string }
	if err := json.Unmarshal(raw, &c); err != nil {
		return false, fmt.Errorf("token payload: %w", err)
	}
	if name, ok := strings.CutPrefix(c.Sub, token.ClientPrefix); ok {
		id, exists := d.clients[name]
		return exists && id == c.Jti, nil
	}
	return c.Sub == token.OwnerSubject && c.Pwv == d.version, nil
}

// accepted asks the running camd whether it accepts tok.
func (h *crashHarness) accepted(p *proc, tok string) bool {
	h.t.Helper()
	r := p.do("GET", "/api/ack", "", bearer(tok))
	switch {
	case r.Status == http.StatusOK || r.Status == http.StatusNotFound:
		return true
	case r.Status == http.StatusUnauthorized && strings.HasPrefix(r.Header.Get("WWW-Authenticate"), invalidToken+", error_description="):
		return false
	}
	h.t.Errorf("round %d: GET /api/ack: %d %q %s", h.round, r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
	return false
}

// checkToken holds the server to the disk, and the disk to the model.
func (h *crashHarness) checkToken(p *proc, disk crashDisk, what, tok string, want crashTok) {
	h.t.Helper()
	if tok == "" {
		return
	}
	onDisk, err := disk.accepts(tok)
	if err != nil {
		h.t.Errorf("round %d: %s: %v", h.round, what, err)
	}
	got := h.accepted(p, tok)
	switch {
	case got != onDisk:
		h.t.Errorf("round %d: %s: camd accepts it %v, its data directory %v", h.round, what, got, onDisk)
	case want == tokValid && !got:
		h.t.Errorf("round %d: %s refused, but nothing acknowledged refuses it", h.round, what)
	case want == tokDead && got:
		h.t.Errorf("round %d: %s accepted, though a change that refuses it was acknowledged or took effect", h.round, what)
	}
}

// checkSecret: the secret is the one last acknowledged, or, when a rotation
// was in flight, possibly a new one; never an older one.
func (h *crashHarness) checkSecret(disk crashDisk) {
	h.t.Helper()
	if disk.secret == nil {
		return // checkDir failed
	}
	switch {
	case h.secret == nil: // first start: anything well formed
	case bytes.Equal(disk.secret, h.secret):
		if h.secretPending {
			h.stats["rotation in flight, not applied"]++
		}
	case !h.secretPending:
		h.t.Errorf("round %d: secret.bin changed with no rotation in flight", h.round)
	case slices.ContainsFunc(h.oldSecrets, func(s []byte) bool { return bytes.Equal(s, disk.secret) }):
		h.t.Errorf("round %d: secret.bin went back to an older secret", h.round)
	default:
		h.stats["rotation in flight, applied"]++
		h.oldSecrets = append(h.oldSecrets, h.secret)
	}
	h.secret, h.secretPending = disk.secret, false
}

// checkPassword: exactly one of the acknowledged password and the one in
// flight logs in, and a password replaced by an acknowledged change is
// refused. It returns a fresh owner token. At most two failed logins per
// start, well under the lockout's five.
func (h *crashHarness) checkPassword(p *proc) string {
	t := h.t
	t.Helper()
	try := func(pw string) (string, bool) {
		r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+pw+`"}`)
		switch r.Status {
		case http.StatusOK:
			tok, _ := r.field(t, "token").(string)
			return tok, true
		case http.StatusUnauthorized:
			return "", false
		}
		t.Fatalf("round %d: login: %d %s", h.round, r.Status, r.Body)
		return "", false
	}
	var tok string
	if h.pending != "" {
		newTok, newOK := try(h.pending)
		oldTok, oldOK := try(h.password)
		switch {
		case newOK && oldOK:
			t.Errorf("round %d: both the old password and the one in flight log in", h.round)
		case newOK:
			h.stats["password change in flight, applied"]++
			h.password, tok = h.pending, newTok
			// password.changed is written before the hash: a new
			// password in effect means older owner tokens are refused.
			h.owner = tokDead
		case oldOK:
			h.stats["password change in flight, not applied"]++
			tok = oldTok
		default:
			t.Fatalf("round %d: neither the acknowledged password nor the one in flight logs in", h.round)
		}
	} else {
		var ok bool
		if tok, ok = try(h.password); !ok {
			t.Fatalf("round %d: the acknowledged password is refused", h.round)
		}
	}
	if h.replaced != "" && h.replaced != h.password {
		if _, ok := try(h.replaced); ok {
			t.Errorf("round %d: a password replaced by an acknowledged change still logs in", h.round)
		}
	}
	h.pending, h.replaced = "", ""
	return tok
}

// checkClients: the server lists exactly what clients.json holds; every
// acknowledged creation not revoked is there and every acknowledged
// revocation is not; tokens are accepted exactly when the disk says so.
func (h *crashHarness) checkClients(p *proc, disk crashDisk) {
	t := h.t
	t.Helper()
	r := p.admin(h.password, "GET", "/admin/clients", "")
	var list []struct{ Name string }
	if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &list) != nil {
		t.Fatalf("round %d: GET /admin/clients: %d %s", h.round, r.Status, r.Body)
	}
	listed := map[string]bool{}
	for _, c := range list {
		listed[c.Name] = true
		if _, ok := disk.clients[c.Name]; !ok {
			t.Errorf("round %d: camd lists %s, which clients.json lacks", h.round, c.Name)
		}
		if _, ok := h.clients[c.Name]; !ok {
			t.Errorf("round %d: client %s appeared though nobody created it", h.round, c.Name)
		}
	}
	if len(listed) != len(disk.clients) {
		t.Errorf("round %d: camd lists %d clients, clients.json holds %d", h.round, len(listed), len(disk.clients))
	}
	for name, c := range h.clients {
		present := listed[name]
		switch c.state {
		case clientCreating:
			h.stats[fmt.Sprintf("creation in flight, applied %v", present)]++
		case clientRevoking:
			h.stats[fmt.Sprintf("revocation in flight, applied %v", !present)]++
		case clientLive:
			if !present {
				t.Errorf("round %d: client %s, created with an acknowledgement, is gone", h.round, name)
			}
		case clientRevoked:
			if present {
				t.Errorf("round %d: client %s, revoked with an acknowledgement, is back", h.round, name)
			}
		}
		h.checkToken(p, disk, "token of client "+name, c.token, c.tok)
		// What the start found settles what was in flight.
		if present {
			c.state = clientLive
		} else if c.state == clientCreating {
			delete(h.clients, name)
			continue
		} else {
			c.state = clientRevoked
		}
		if c.token != "" {
			if ok, _ := disk.accepts(c.token); ok {
				c.tok = tokValid
			} else {
				c.tok = tokDead
			}
		}
	}
}

// checkAcks: the stored ack is one that was sent, and no ack answered 200
// is newer than it. The store keeps only the last ack, in the order the
// server took them, which concurrent clients cannot see; what they can see
// is that ack X's 200 arrived before ack Y was sent, so Y came later. The
// stored ack must therefore not be one whose 200 arrived before an
// acknowledged ack was sent. With one client this is "the last ack answered
// 200 or the one in flight".
func (h *crashHarness) checkAcks(p *proc, tok string) {
	t := h.t
	t.Helper()
	r := p.do("GET", "/api/ack", "", bearer(tok))
	var acked []crashAck
	for _, a := range h.acks {
		if a.ok {
			acked = append(acked, a)
		}
	}
	defer func() { h.acks = nil }()
	if len(h.acks) > 0 {
		h.stats["acks answered 200"] += len(acked)
	}
	if r.Status == http.StatusNotFound {
		if len(acked) > 0 || h.lastAck != nil {
			t.Errorf("round %d: no ack stored after %d acks answered 200 (last stored before: %v)", h.round, len(acked), h.lastAck != nil)
		}
		return
	}
	var got struct {
		User  string
		Count uint64
	}
	if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &got) != nil {
		t.Fatalf("round %d: GET /api/ack: %d %s", h.round, r.Status, r.Body)
	}
	i := slices.IndexFunc(h.acks, func(a crashAck) bool { return a.count == got.Count })
	switch {
	case i >= 0:
		stored := h.acks[i]
		if stored.user != got.User {
			t.Errorf("round %d: ack %d stored for %s, sent by %s", h.round, got.Count, got.User, stored.user)
		}
		for _, x := range acked {
			if stored.ok && stored.end.Before(x.start) {
				t.Errorf("round %d: stored ack %d was answered before ack %d was sent, and that one was answered 200 too: lost", h.round, stored.count, x.count)
				break
			}
		}
		h.lastAck = &stored
		if !stored.ok {
			h.stats["stored ack was in flight"]++
		}
	case len(acked) == 0 && h.lastAck != nil && h.lastAck.count == got.Count && h.lastAck.user == got.User:
		// Nothing newer was acknowledged: the earlier ack may stay.
	default:
		t.Errorf("round %d: stored ack %+v is neither one sent in this round nor, with none acknowledged, the one stored before (%d sent, %d answered 200)",
			h.round, got, len(h.acks), len(acked))
	}
}

// crashKill is when a round kills camd. Half the rounds kill at a uniform
// random time from the start of the work. The other half aim at the
// moments that matter, where one write is done and the next not: they wait
// for camd to begin its nth atomic write (an inotify event for the
// temporary file), then up to 2 ms more, which covers the write, its
// fsync, the rename and the next file.
type crashKill struct {
	writes int           // 0: timed; else the write to wait for, from 1
	delay  time.Duration // then this long
	limit  time.Duration // the kill comes at the latest this long after the start
}

func (h *crashHarness) plan(maxDelay time.Duration) crashKill {
	if h.rng.IntN(2) == 0 {
		return crashKill{delay: time.Duration(h.rng.Int64N(int64(maxDelay)))}
	}
	return crashKill{
		writes: 1 + h.rng.IntN(3),
		delay:  time.Duration(h.rng.Int64N(int64(2 * time.Millisecond))),
		limit:  4 * maxDelay,
	}
}

// crashAim waits for the moment of a kill.
type crashAim struct {
	k      crashKill
	start  time.Time
	inotif *os.File    // nil when timed
	events chan string // names created in the data directory
}

// aim starts watching the data directory, which must exist when the kill
// waits for a write, and returns what waits for the kill's moment.
func (h *crashHarness) aim() *crashAim {
	t := h.t
	t.Helper()
	a := &crashAim{k: h.kill, start: time.Now()}
	if a.k.writes == 0 {
		h.stats["kills timed"]++
		return a
	}
	h.stats[fmt.Sprintf("kills aimed at write %d", a.k.writes)]++
	// Non-blocking, so the os.File goes through the poller and Close
	// ends a pending Read.
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	a.inotif = os.NewFile(uintptr(fd), "inotify")
	if _, err := syscall.InotifyAddWatch(fd, h.dir, syscall.IN_CREATE); err != nil {
		a.inotif.Close()
		t.Fatalf("inotify watch %s: %v", h.dir, err)
	}
	a.events = make(chan string, 256)
	go func() {
		defer close(a.events)
		buf := make([]byte, 64*1024)
		for {
			n, err := a.inotif.Read(buf)
			if err != nil {
				return // closed
			}
			// struct inotify_event: wd, mask, cookie, len, then name[len].
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				l := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+l]), "\x00")
				off += syscall.SizeofInotifyEvent + l
				select {
				case a.events <- name:
				default: // the kill has come; nobody reads
				}
			}
		}
	}()
	return a
}

// wait returns at the kill's moment, or when done closes first.
func (a *crashAim) wait(done <-chan struct{}) {
	if a.k.writes > 0 {
		limit := time.NewTimer(a.k.limit - time.Since(a.start))
		defer limit.Stop()
	writes:
		for seen := 0; seen < a.k.writes; {
			select {
			case name := <-a.events:
				if atomicfile.IsTemp(name) {
					seen++
				}
			case <-done:
				return
			case <-limit.C:
				break writes // fewer writes than planned: kill now
			}
		}
	}
	select {
	case <-time.After(a.k.delay):
	case <-done:
	}
}

func (a *crashAim) close() {
	if a.inotif != nil {
		a.inotif.Close()
	}
}

// crashExit is how a command run by runKilled (or serveKilled) ended.
type crashExit struct {
	completed bool // exited by itself before the kill
	code      int
	stdout    string
	stderr    string // serveKilled: without the password line
	password  string // serveKilled: the initial owner password it printed
}

// runKilled runs camd with args and SIGKILLs it as h.kill says, unless it
// exits first.
func (h *crashHarness) runKilled(stdin string, args ...string) crashExit {
	t := h.t
	t.Helper()
	aim := h.aim()
	defer aim.close()
	cmd := exec.Command(camd(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("round %d: start camd %v: %v", h.round, args, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() // the exit status is read from ProcessState
		close(done)
	}()
	st := h.killWhenAimed(aim, cmd, done, strings.Join(args, " "))
	return crashExit{completed: st.Exited(), code: st.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// serveKilled is runKilled for camd serve on h.dir, started by camdtest
// without waiting for it to be ready.
func (h *crashHarness) serveKilled() crashExit {
	t := h.t
	t.Helper()
	aim := h.aim()
	defer aim.close()
	p, err := camdtest.Launch(serveOptions(t, h.dir, h.serveFlags()))
	if err != nil {
		t.Fatalf("round %d: %v", h.round, err)
	}
	t.Cleanup(p.Kill)
	st := h.killWhenAimed(aim, p.Cmd, p.Done(), "serve")
	p.Kill() // reaped already; sets p.Password on this goroutine
	return crashExit{completed: st.Exited(), code: st.ExitCode(), stderr: p.Logs(), password: p.Password}
}

// killWhenAimed SIGKILLs cmd at aim's moment, unless done (it was
// reaped) closes first, and returns how it ended: by itself or by SIGKILL.
func (h *crashHarness) killWhenAimed(aim *crashAim, cmd *exec.Cmd, done <-chan struct{}, what string) *os.ProcessState {
	t := h.t
	t.Helper()
	aim.wait(done)
	cmd.Process.Kill() // fails harmlessly when it has exited
	select {
	case <-done:
	case <-time.After(crashWait):
		t.Fatalf("round %d: camd %s did not die within %v of SIGKILL", h.round, what, crashWait)
	}
	st := cmd.ProcessState
	ws, _ := st.Sys().(syscall.WaitStatus)
	if !st.Exited() && !(ws.Signaled() && ws.Signal() == syscall.SIGKILL) {
		t.Fatalf("round %d: camd %s ended with %v", h.round, what, st)
	}
	return st
}

// during runs work against p in a goroutine, kills p as h.kill says and
// waits for work to see the connection drop.
func (h *crashHarness) during(p *proc, work func()) {
	h.t.Helper()
	aim := h.aim()
	defer aim.close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		work()
	}()
	aim.wait(p.done)
	p.kill()
	select {
	case <-done:
	case <-time.After(crashWait):
		h.t.Fatalf("round %d: requests still running %v after the kill", h.round, crashWait)
	}
}

// crashFirstStart: kill camd while it makes an empty directory its data
// directory, then start it again there.
func crashFirstStart(h *crashHarness) {
	t := h.t
	// A directory that does not exist yet: the kill can land before camd
	// creates it.
	h.reset()
	if h.kill.writes > 0 {
		// Watched for writes, so it must exist; timed kills start with
		// no directory at all.
		if err := os.Mkdir(h.dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ex := h.serveKilled()
	if ex.completed {
		t.Fatalf("round %d: camd exited by itself (%d):\n%s", h.round, ex.code, ex.stderr)
	}
	printed := ex.password
	// What the kill left, before the next start repairs anything.
	sec, secErr := os.ReadFile(filepath.Join(h.dir, secret.FileName))
	_, hashErr := os.Stat(filepath.Join(h.dir, password.FileName))
	switch {
	case secErr == nil && len(sec) != secret.Size:
		t.Errorf("round %d: the kill left a secret.bin of %d bytes", h.round, len(sec))
	case secErr == nil:
		h.secret = sec // the next start must keep it: tokens may exist
	case !os.IsNotExist(secErr):
		t.Fatalf("round %d: %v", h.round, secErr)
	}
	hashed := hashErr == nil
	// A complete certificate must be kept: its fingerprint may be pinned.
	var keptFingerprint string
	if crt, err := os.ReadFile(filepath.Join(h.dir, tlscert.CertFileName)); err == nil {
		if _, err := os.Stat(filepath.Join(h.dir, tlscert.KeyFileName)); err != nil {
			t.Errorf("round %d: the kill left tls.crt without tls.key", h.round)
		}
		if b, _ := pem.Decode(crt); b != nil {
			keptFingerprint = tlscert.Fingerprint(b.Bytes)
		} else {
			t.Errorf("round %d: the kill left a tls.crt that is not PEM", h.round)
		}
	}
	// camd prints the initial password before it stores the hash: a kill
	// between the two leaves no hash, and the next start prints another.
	// A hash that was never printed would be a password nobody knows.
	if hashed && printed == "" {
		t.Errorf("round %d: a hash was stored but the initial password was never printed", h.round)
	}
	if hashed {
		h.password = printed
	}

	p := h.restart()
	defer p.kill()
	if keptFingerprint != "" && h.fingerprint != keptFingerprint {
		t.Errorf("round %d: the next start replaced a complete TLS certificate", h.round)
	}
	switch {
	case hashed && p.Password != "":
		t.Errorf("round %d: a hash was stored, yet the next start made a new initial password", h.round)
	case !hashed && p.Password == "":
		t.Errorf("round %d: no hash was stored, yet the next start printed no initial password", h.round)
	case strings.Contains(ex.stderr, `"msg":"listening"`):
		h.stats["killed after listening"]++
	case hashed:
		h.stats["killed after storing the password"]++
	case printed != "":
		// The printed password was never stored; the next start printed
		// a new one (checked above).
		h.stats["killed between printing and storing the password"]++
	case secErr == nil:
		h.stats["killed after the secret, before the password"]++
	default:
		h.stats["killed before the secret"]++
	}
}

// crashPasswordAPI: change the password through the admin API, again and
// again, until the kill.
func crashPasswordAPI(h *crashHarness) {
	p := h.restart()
	before := h.password
	var acked []string
	var inFlight string
	h.during(p, func() {
		cur := before
		for i := 0; ; i++ {
			next := fmt.Sprintf("crash password %d.%d", h.round, i)
			r, err := p.try("POST", "/admin/password", `{"password":"`+next+`"}`, basicAuth("owner", cur))
			if err != nil {
				inFlight = next
				return
			}
			if r.Status != http.StatusNoContent {
				h.t.Errorf("round %d: POST /admin/password: %d %s", h.round, r.Status, r.Body)
				return
			}
			acked = append(acked, next)
			cur = next
		}
	})
	h.stats["password changes acknowledged"] += len(acked)
	if len(acked) > 0 {
		h.password, h.replaced = acked[len(acked)-1], before
	}
	h.pending = inFlight
	if inFlight != "" {
		h.tokensChanged(false, true)
	}
	if len(acked) > 0 {
		h.tokensChanged(true, true)
	}
}

// crashPasswdCommand: camd passwd, offline, killed while it runs.
func crashPasswdCommand(h *crashHarness) {
	h.restart().kill()
	next := fmt.Sprintf("offline password %d", h.round)
	ex := h.runKilled(next+"\n", "passwd", "--data-dir", h.dir)
	switch {
	case !ex.completed:
		h.stats["passwd killed"]++
		h.pending = next
		h.tokensChanged(false, true)
	case ex.code != 0:
		h.t.Fatalf("round %d: camd passwd: %d %s", h.round, ex.code, ex.stderr)
	default:
		h.stats["passwd completed"]++
		h.replaced, h.password = h.password, next
		h.tokensChanged(true, true)
	}
}

// liveClients returns the names of the clients known to exist, sorted so a
// seed picks the same one.
func (h *crashHarness) liveClients() []string {
	var out []string
	for name, c := range h.clients {
		if c.state == clientLive {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// crashClientsAPI: create and revoke clients through the admin API until
// the kill.
func crashClientsAPI(h *crashHarness) {
	p := h.restart()
	// Drawn here: the goroutine must not share the rng.
	picks := make([]int, 64)
	for i := range picks {
		picks[i] = h.rng.IntN(1000)
	}
	h.during(p, func() {
		for _, pick := range picks {
			live := h.liveClients()
			if pick < 600 || len(live) == 0 {
				h.names++
				name := "c" + strconv.Itoa(h.names)
				c := &crashClient{state: clientCreating}
				h.clients[name] = c
				r, err := p.try("POST", "/admin/clients", `{"name":"`+name+`"}`, basicAuth("owner", h.password))
				if err != nil {
					return
				}
				var body struct{ Token string }
				if r.Status != http.StatusCreated || json.Unmarshal([]byte(r.Body), &body) != nil || body.Token == "" {
					h.t.Errorf("round %d: create %s: %d %s", h.round, name, r.Status, r.Body)
					return
				}
				c.state, c.token, c.tok = clientLive, body.Token, tokValid
				h.stats["creations acknowledged"]++
				continue
			}
			name := live[pick%len(live)]
			c := h.clients[name]
			c.state = clientRevoking
			if c.tok == tokValid {
				c.tok = tokEither
			}
			r, err := p.try("DELETE", "/admin/clients/"+name, "", basicAuth("owner", h.password))
			if err != nil {
				return
			}
			if r.Status != http.StatusNoContent {
				h.t.Errorf("round %d: revoke %s: %d %s", h.round, name, r.Status, r.Body)
				return
			}
			c.state, c.tok = clientRevoked, tokDead
			h.stats["revocations acknowledged"]++
		}
	})
}

// crashClientCommand: camd client add or revoke, offline, killed while it
// runs.
func crashClientCommand(h *crashHarness) {
	h.restart().kill()
	live := h.liveClients()
	if h.rng.IntN(10) < 6 || len(live) == 0 {
		h.names++
		name := "c" + strconv.Itoa(h.names)
		c := &crashClient{state: clientCreating}
		h.clients[name] = c
		ex := h.runKilled("", "client", "add", name, "--data-dir", h.dir)
		switch {
		case !ex.completed:
			h.stats["client add killed"]++
		case ex.code != 0:
			h.t.Fatalf("round %d: camd client add: %d %s", h.round, ex.code, ex.stderr)
		default:
			h.stats["client add completed"]++
			c.state, c.token, c.tok = clientLive, strings.TrimSpace(ex.stdout), tokValid
		}
		return
	}
	name := live[h.rng.IntN(len(live))]
	c := h.clients[name]
	ex := h.runKilled("", "client", "revoke", name, "--data-dir", h.dir)
	switch {
	case !ex.completed:
		h.stats["client revoke killed"]++
		c.state = clientRevoking
		if c.tok == tokValid {
			c.tok = tokEither
		}
	case ex.code != 0:
		h.t.Fatalf("round %d: camd client revoke: %d %s", h.round, ex.code, ex.stderr)
	default:
		h.stats["client revoke completed"]++
		c.state, c.tok = clientRevoked, tokDead
	}
}

// crashRotate: rotate the secret through the admin API until the kill.
func crashRotate(h *crashHarness) {
	p := h.restart()
	var acked [][]byte
	inFlight := false
	h.during(p, func() {
		for {
			r, err := p.try("POST", "/admin/rotate-secret", "{}", basicAuth("owner", h.password))
			if err != nil {
				inFlight = true
				return
			}
			if r.Status != http.StatusOK {
				h.t.Errorf("round %d: rotate: %d %s", h.round, r.Status, r.Body)
				return
			}
			// Only this loop rotates, and the next rotation is not sent
			// yet: the file holds the new secret.
			b, err := os.ReadFile(filepath.Join(h.dir, secret.FileName))
			if err != nil {
				h.t.Errorf("round %d: %v", h.round, err)
				return
			}
			acked = append(acked, b)
		}
	})
	h.stats["rotations acknowledged"] += len(acked)
	for _, s := range acked {
		h.oldSecrets = append(h.oldSecrets, h.secret)
		h.secret = s
	}
	if len(acked) > 0 {
		h.tokensChanged(true, false)
	}
	if inFlight {
		h.secretPending = true
		h.tokensChanged(false, false)
	}
}

// crashAcks: a stream of acks from one to four clients at once, with the
// owner's token and a client's in turn, until the kill. One client is the
// sharpest test (the stored ack must be the last answered 200 or the one in
// flight); several make group commit share writes.
func crashAcks(h *crashHarness) {
	p := h.restart()
	type sender struct{ tok, user string }
	senders := []sender{{h.ownerTok, token.OwnerSubject}}
	for i := range h.rng.IntN(4) {
		if i%2 == 0 {
			senders = append(senders, sender{h.acker, token.ClientPrefix + "acker"})
		} else {
			senders = append(senders, sender{h.ownerTok, token.OwnerSubject})
		}
	}
	h.stats[fmt.Sprintf("rounds with %d senders", len(senders))]++
	var mu sync.Mutex // guards h.counts and h.acks
	h.during(p, func() {
		var wg sync.WaitGroup
		for _, s := range senders {
			wg.Go(func() {
				for {
					mu.Lock()
					h.counts++
					a := crashAck{count: h.counts, user: s.user, start: time.Now()}
					mu.Unlock()
					r, err := p.try("POST", "/api/ack", `{"count":`+strconv.FormatUint(a.count, 10)+`}`, bearer(s.tok))
					if err == nil && r.Status != http.StatusOK {
						h.t.Errorf("round %d: ack %d: %d %s", h.round, a.count, r.Status, r.Body)
					}
					if err == nil && r.Status == http.StatusOK {
						a.ok, a.end = true, time.Now()
					}
					mu.Lock()
					h.acks = append(h.acks, a)
					mu.Unlock()
					if err != nil || !a.ok {
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
