// Command bench measures camd against a bare net/http + golang-jwt reference
// server and against camd's own goals, and prints one table:
//
//	go run ./bench           full run, under 5 minutes
//	go run ./bench -short    CI run, under a minute on 2 cores
//
// It builds camd from this module exactly as shipped (scripts/dist.sh amd64)
// and the reference the same way (static, stripped), and runs both as
// separate processes on 127.0.0.1, so that each
// server's CPU time and memory can be read from /proc and the load
// generator's own work counts against neither. The phases, one file each:
// size.go (the cam binaries, built by scripts/dist.sh), read.go
// (authenticated reads against the reference, camd's access log written to
// a file), login.go (the cost of a login, and reads beside logins), ack.go
// (durable acks, group commit on and off), startup.go, memory.go,
// emulated.go (armv7 builds of camd and the reference under qemu-user) and
// image.go (the Dockerfile's image, full mode only).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"camd/internal/camdtest"
)

// counts are how much work each phase does.
type counts struct {
	rounds      int // alternating camd/reference read rounds
	requests    int // GET /api/ack per read round and per login-phase run
	acks        int // POST /api/ack per group-commit setting
	logins      int // sequential logins timed
	starts      int // start-ups timed per server
	memRequests int // GET /api/ack before the second RSS reading
	emuRounds   int // alternating read rounds under qemu
	emuRequests int // GET /api/ack per read round under qemu
	emuLogins   int // sequential logins timed under qemu
}

var (
	fullCounts = counts{rounds: 5, requests: 100_000, acks: 5_000, logins: 10, starts: 5, memRequests: 20_000,
		emuRounds: 3, emuRequests: 5_000, emuLogins: 5}
	shortCounts = counts{rounds: 2, requests: 5_000, acks: 500, logins: 10, starts: 3, memRequests: 20_000,
		emuRounds: 2, emuRequests: 1_000, emuLogins: 3}
)

func main() {
	reference := flag.Bool("reference", false, "run as the reference server (the bench starts it itself)")
	addr := flag.String("addr", "127.0.0.1:0", "with -reference: address to listen on")
	key := flag.String("key", "", "with -reference: HS256 key in hex")
	short := flag.Bool("short", false, "small counts, for CI: under a minute on 2 cores")
	rounds := flag.Int("rounds", 0, "read rounds per server (default 5, -short 2)")
	requests := flag.Int("requests", 0, "GET /api/ack per read round, and per run of the login phase (default 100000, -short 5000)")
	phaseTimeout := flag.Duration("phase-timeout", 2*time.Minute, "abort when one phase takes longer (the image build: 5 times longer)")
	tmpParent := flag.String("tmpdir", "", "where to make the temporary directory; the data directory's file system decides the cost of a durable ack (default: the system's)")
	keep := flag.Bool("keep", false, "keep the temporary directory (camd's logs and data) and print its path")
	flag.Parse()

	if *reference {
		if err := runReference(*addr, *key); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	c := fullCounts
	if *short {
		c = shortCounts
	}
	if *rounds > 0 {
		c.rounds = *rounds
	}
	if *requests > 0 {
		c.requests = *requests
	}
	os.Exit(run(c, *short, *phaseTimeout, *tmpParent, *keep))
}

// bench is one benchmark run's state.
type bench struct {
	counts
	short    bool
	timeout  time.Duration
	tmp      string
	camdBin  string
	camdDesc string // what camdBuild said right after the build
	root     string // camd's module root
	refBin   string // the reference server: this package, built as camd is
	dataDir  string
	clkTck   int
	help     string // camd --help
	loadAvg  string // the 1-minute load average before the first phase

	readCamd *server // the camd of the read phase, which the login phase goes on with
	armv7Bin string  // camd as scripts/dist.sh armv7 built it
	loginMs  float64 // median login on amd64, from the login phase

	password string // the owner password camd printed at first start
	token    string // an owner token from camd
	refKey   string // the reference's key in hex
	refToken string // an owner token signed with refKey

	rows  []row
	notes []string
}

func run(c counts, short bool, timeout time.Duration, tmpParent string, keep bool) int {
	started := time.Now()
	// Ctrl-C ends the phase in progress; the deferred killAll then ends the
	// servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer killAll()

	b := &bench{counts: c, short: short, timeout: timeout}
	if err := b.setup(ctx, tmpParent); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if keep {
		defer fmt.Fprintln(os.Stderr, "bench: kept", b.tmp)
	} else {
		defer os.RemoveAll(b.tmp)
	}

	phases := []struct {
		name  string
		run   func(context.Context) error
		slack time.Duration // multiplies the phase timeout
	}{
		{"binary size", b.sizePhase, 1},
		{"authenticated read", b.readPhase, 1},
		{"login", b.loginPhase, 1},
		{"durable ack", b.ackPhase, 1},
		{"start-up", b.startupPhase, 1},
		{"memory", b.memoryPhase, 1},
		{"armv7 under qemu", b.emulatedPhase, 1},
		// A first build imports the builder image and compiles camd
		// from an empty cache inside it.
		{"container image", b.imagePhase, 5},
	}
	for _, p := range phases {
		fmt.Fprintf(os.Stderr, "bench: %s...\n", p.name)
		limit := p.slack * timeout
		pctx, cancel := context.WithTimeoutCause(ctx, limit, fmt.Errorf("phase %q took over %v", p.name, limit))
		err := p.run(pctx)
		cancel()
		if err != nil {
			killAll()
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", p.name, err)
			return 1
		}
	}

	mode := "full"
	if short {
		mode = "short (-short)"
	}
	fmt.Printf("camd benchmark, %s mode\n", mode)
	for _, line := range b.context() {
		fmt.Println(line)
	}
	fmt.Println()
	printTable(os.Stdout, b.rows)
	fmt.Println()
	for _, n := range b.notes {
		fmt.Println(n)
	}
	// Allocation counts are not measured here: they are Go benchmarks in
	// camd's own packages. Point at those that exist.
	if pkgs := benchPackages(b.root); len(pkgs) > 0 {
		fmt.Println("allocations: go test -run x -bench . -benchmem " + strings.Join(pkgs, " "))
	} else {
		fmt.Println("allocations: go test -run x -bench . -benchmem ./... (no Go benchmarks found yet)")
	}
	fmt.Printf("bench run time: %s\n", time.Since(started).Round(100*time.Millisecond))
	return 0
}

// setup builds camd and picks the temporary paths.
func (b *bench) setup(ctx context.Context, tmpParent string) error {
	var err error
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("not inside camd's module (go env GOMOD is %q)", gomod)
	}
	if b.tmp, err = os.MkdirTemp(tmpParent, "camd-bench-"); err != nil {
		return err
	}
	// Absolute: a server's stderr is checked against a log file's path.
	if b.tmp, err = filepath.Abs(b.tmp); err != nil {
		return err
	}
	b.dataDir = filepath.Join(b.tmp, "data")
	b.root = filepath.Dir(gomod)
	// Exactly as shipped: scripts/dist.sh's amd64 build (static, stripped,
	// its build tags). The reference is this package built the same way
	// (static, stripped), so that neither pays for a dynamic loader the
	// other does not.
	dist := exec.CommandContext(ctx, "bash", "scripts/dist.sh", "amd64")
	dist.Dir = b.root
	dist.Env = append(childEnv(), "DIST_DIR="+b.tmp)
	if out, err := dist.CombinedOutput(); err != nil {
		os.RemoveAll(b.tmp)
		return fmt.Errorf("scripts/dist.sh amd64: %v\n%s", err, out)
	}
	b.camdBin = filepath.Join(b.tmp, "camd-linux-amd64")
	b.refBin = filepath.Join(b.tmp, "reference")
	if err := camdtest.Compile(ctx, b.refBin, "./bench", camdtest.BuildOptions{
		Env:   []string{"CGO_ENABLED=0"},
		Flags: []string{"-trimpath", "-ldflags", "-s -w"},
		Dir:   b.root,
	}); err != nil {
		os.RemoveAll(b.tmp)
		return fmt.Errorf("build the reference: %w", err)
	}
	b.camdDesc = camdBuild(b.camdBin, b.root)
	b.help = camdHelp(ctx, b.camdBin)
	b.loadAvg = loadAverage()
	var src string
	b.clkTck, src = clockTicks(ctx)
	b.notes = append(b.notes, fmt.Sprintf("CPU/request: utime+stime from /proc/PID/stat over the round, CLK_TCK = %d (%s).", b.clkTck, src))
	key := make([]byte, 32)
	rand.Read(key)
	b.refKey = hex.EncodeToString(key)
	return nil
}

// logPath names a server's log file in the temporary directory.
func (b *bench) logPath(name string) string {
	return filepath.Join(b.tmp, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
}

// context returns the lines that say where the figures come from.
func (b *bench) context() []string {
	lines := []string{
		fmt.Sprintf("machine: %s/%s, NumCPU %d, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel()),
		fmt.Sprintf("go: %s; camd: %s", runtime.Version(), b.camdDesc),
		fmt.Sprintf("date: %s; 1-min load average %s before, %s after (other work on the machine skews every figure)",
			time.Now().UTC().Format(time.RFC3339), b.loadAvg, loadAverage()),
		fmt.Sprintf("data dir: %s (%s)", b.dataDir, fsType(b.dataDir)),
		fmt.Sprintf("counts: %d rounds x %d GET per server, %d acks per setting, %d logins, %d start-ups, %d GET before RSS; under qemu %d rounds x %d GET, %d logins",
			b.rounds, b.requests, b.acks, b.logins, b.starts, b.memRequests, b.emuRounds, b.emuRequests, b.emuLogins),
	}
	return lines
}
