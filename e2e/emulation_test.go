package e2e

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camd/internal/camdtest"
)

// camArch is a cam SoC target: how to build for it, which qemu-user runs
// it, and the ELF header the build must have.
type camArch struct {
	name    string
	goarch  string
	variant string // GOARM=7, GOMIPS=softfloat: also what debug/buildinfo records
	qemu    string
	machine elf.Machine
}

var camArches = []camArch{
	{name: "armv7", goarch: "arm", variant: "GOARM=7", qemu: "qemu-arm-static", machine: elf.EM_ARM},
	{name: "mipsle", goarch: "mipsle", variant: "GOMIPS=softfloat", qemu: "qemu-mipsel-static", machine: elf.EM_MIPS},
}

// TestEmulatedCamBuilds cross-builds camd for the cams' 32-bit SoCs and runs
// each build as a real server under qemu-user: login, ack, admin, healthz
// and a graceful stop. It catches what a native build cannot: 32-bit
// alignment of atomics, softfloat, syscalls that differ per architecture
// (flock, fsync, rename in the data directory).
func TestEmulatedCamBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds and emulates camd")
	}
	// Sequential on purpose: each build and each emulated server wants both
	// of the CI machine's cores.
	for _, a := range camArches {
		t.Run(a.name, func(t *testing.T) { testEmulated(t, a) })
	}
}

func testEmulated(t *testing.T, a camArch) {
	qemu := needTool(t, a.qemu, "qemu-user-static")

	began := time.Now()
	bin := crossBuild(t, a)
	built := time.Now()
	checkELF(t, bin, a)

	p := startEmulated(t, qemu, bin, t.TempDir())
	if p.Password == "" {
		t.Fatalf("no initial password on stderr:\n%s", p.logs())
	}
	tok := p.login(p.Password)
	if r := p.do("POST", "/api/ack", `{"count":3}`, bearer(tok)); r.Status != http.StatusOK || r.field(t, "count") != float64(3) {
		t.Fatalf("POST /api/ack: %d %s", r.Status, r.Body)
	}
	if r := p.do("GET", "/api/ack", "", bearer(tok)); r.Status != http.StatusOK || r.field(t, "count") != float64(3) {
		t.Fatalf("GET /api/ack: %d %s", r.Status, r.Body)
	}
	if r := p.do("GET", "/admin", "", basicAuth("owner", p.Password)); r.Status != http.StatusOK || r.Body != "hi owner" {
		t.Fatalf("GET /admin: %d %q", r.Status, r.Body)
	}
	// The admin page and a pairing QR code, rendered by this build.
	if r := p.do("GET", "/admin", "", basicAuth("owner", p.Password), "Accept: text/html"); r.Status != http.StatusOK || !strings.Contains(r.Body, `id="greeting">hi owner<`) {
		t.Fatalf("GET /admin as a browser: %d %.300s", r.Status, r.Body)
	}
	if r := p.pageForm(p.Password, "/admin/ui/clients", "name=owner-phone"); r.Status != http.StatusCreated || !strings.Contains(r.Body, `<img id="qr" src="data:image/png;base64,`) {
		t.Fatalf("create a client with the admin page's form: %d %.300s", r.Status, r.Body)
	}
	if r := p.do("GET", "/healthz", ""); r.Status != http.StatusOK || r.field(t, "status") != "ok" {
		t.Fatalf("GET /healthz: %d %s", r.Status, r.Body)
	}

	// qemu-user passes SIGTERM on to the guest and exits with its status.
	code, err := p.cp.Stop() // within Options.StopTimeout, 20 s
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.logs())
	}
	if strings.Contains(p.logs(), `"level":"ERROR"`) {
		t.Errorf("errors logged under emulation:\n%s", p.logs())
	}
	t.Logf("%s: build %v, emulated run %v", a.name, built.Sub(began).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
}

// crossBuild builds camd for a as `make dist` does, minus the stamps.
func crossBuild(t *testing.T, a camArch) string {
	t.Helper()
	// Later entries win, so these override whatever the caller exported.
	return camdtest.BuildWith(t, "camd", camdtest.BuildOptions{
		Env:   []string{"GOOS=linux", "GOARCH=" + a.goarch, a.variant, "CGO_ENABLED=0"},
		Flags: []string{"-trimpath", "-ldflags", "-s -w"},
	})
}

// checkELF proves the binary is foreign: 32-bit little-endian for the
// SoC's machine, with the variant (GOARM, GOMIPS) that was asked for.
func checkELF(t *testing.T, bin string, a camArch) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != a.machine || f.Class != elf.ELFCLASS32 || f.ByteOrder != binary.LittleEndian {
		t.Fatalf("ELF header: machine %v, class %v, byte order %v; want %v, 32-bit, little-endian", f.Machine, f.Class, f.ByteOrder, a.machine)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := strings.Cut(a.variant, "=")
	for _, s := range info.Settings {
		if s.Key == key {
			if s.Key+"="+s.Value != a.variant {
				t.Fatalf("build info: %s=%s, want %s", s.Key, s.Value, a.variant)
			}
			return
		}
	}
	t.Fatalf("build info records no %s", key)
}

// startEmulated is start with the binary run by qemu-user.
func startEmulated(t *testing.T, qemu, bin, dataDir string) *proc {
	t.Helper()
	p, err := startWith(t, camdtest.Options{
		Bin: bin, Wrapper: []string{qemu}, Dir: dataDir,
		// Emulation is slow: the first start hashes the password at
		// ~0.1 s per pass.
		Timeout: 60 * time.Second, StopTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("under %s: %v", filepath.Base(qemu), err)
	}
	return p
}
