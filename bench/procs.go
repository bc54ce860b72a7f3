package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"camd/internal/camdtest"
)

// server is a camd or reference process the bench started. Both speak the
// systemd readiness protocol, so camdtest launches and waits for either.
type server struct {
	name string
	*camdtest.Proc
	logPath string // its output, for error messages; never the password line
}

// live holds every process not yet reaped, so that killAll can end them on
// any way out of main, an error or a signal included.
var live struct {
	sync.Mutex
	m map[*server]struct{}
}

func track(s *server) {
	live.Lock()
	defer live.Unlock()
	if live.m == nil {
		live.m = map[*server]struct{}{}
	}
	live.m[s] = struct{}{}
}

func untrack(s *server) {
	live.Lock()
	defer live.Unlock()
	delete(live.m, s)
}

// killAll kills every process the bench started and has not reaped yet,
// and waits up to 5 s for them to be gone, so that the temporary directory
// can be removed after it. (camdtest also has the kernel kill a child when
// the bench dies without running its defers.)
func killAll() {
	live.Lock()
	var all []*server
	for s := range live.m {
		all = append(all, s)
	}
	live.Unlock()
	deadline := time.After(5 * time.Second)
	for _, s := range all {
		s.Cmd.Process.Kill()
		select {
		case <-s.Done():
		case <-deadline:
			return
		}
	}
}

// childEnv is the bench's environment without CAMD_* variables, which
// would change what is measured, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAMD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// camdOptions are the options camd serve runs with on listen. camd's
// output (its log, the access log included) goes wherever launch sends it,
// the initial password line excepted: the access log stays on, as shipped,
// and costs camd what it costs on a cam.
//
// The per-address connection cap is lifted: every client of the bench is
// 127.0.0.1, and its load runs open 32 connections each beside the API
// client's, where a cam's clients are many addresses. The reference has no
// cap either.
func camdOptions(bin, dataDir, listen string, env []string) camdtest.Options {
	return camdtest.Options{
		Bin: bin, Dir: dataDir, BaseEnv: env,
		Flags: []string{"--listen", listen, "--max-conns-per-addr", "0"},
	}
}

// launchCamd starts camd serve on listen, its output in logPath through
// camdtest's pipe, and returns at once.
func launchCamd(bin, dataDir, listen, logPath string, env []string) (*server, error) {
	return launch("camd", camdOptions(bin, dataDir, listen, env), logPath)
}

// startCamd starts camd and returns once it is ready. Its Password is the
// initial owner password on a first start, and its Logs hold what camd
// logged up to readiness.
func startCamd(ctx context.Context, bin, dataDir, listen, logPath string, env []string) (*server, error) {
	return start(ctx, "camd", camdOptions(bin, dataDir, listen, env), logPath)
}

// referenceOptions run bin, this package built as a static binary, as the
// reference server on listen.
func referenceOptions(bin, key, listen string) camdtest.Options {
	return camdtest.Options{
		Bin: bin, Args: []string{"-reference", "-addr", listen, "-key", key}, BaseEnv: childEnv(),
	}
}

// launchReference starts this binary as the reference server on listen and
// returns at once.
func launchReference(bin, key, listen, logPath string) (*server, error) {
	return launch("reference", referenceOptions(bin, key, listen), logPath)
}

// startReference starts the reference server and returns once it is ready.
func startReference(ctx context.Context, bin, key, listen, logPath string) (*server, error) {
	return start(ctx, "reference", referenceOptions(bin, key, listen), logPath)
}

// outputToFile has the server write its stdout and stderr straight to the
// regular file path, opened for appending, instead of to camdtest's pipe,
// as camd's log goes to a file on a cam: sh opens the file and execs the
// server in its own place, so the pid stays the server's. Give launch the
// same path: only an error from sh itself then comes through the pipe.
// The server must not be on its first start, whose password line would
// land in the file.
func outputToFile(o camdtest.Options, path string) camdtest.Options {
	sh := []string{"/bin/sh", "-c", `f=$1; shift; exec "$@" >>"$f" 2>&1`, "sh", path}
	o.Wrapper = append(sh, o.Wrapper...)
	return o
}

// stderrIsFile checks that the server's stderr is the regular file path.
func stderrIsFile(s *server, path string) error {
	fd := fmt.Sprintf("/proc/%d/fd/2", s.pid())
	target, err := os.Readlink(fd)
	if err != nil {
		return err
	}
	st, err := os.Stat(fd)
	if err != nil {
		return err
	}
	if target != path || !st.Mode().IsRegular() {
		return fmt.Errorf("%s: stderr is %s (%v), want the regular file %s", s.name, target, st.Mode().Type(), path)
	}
	return nil
}

// start launches a server and waits until it is ready.
func start(ctx context.Context, name string, o camdtest.Options, logPath string) (*server, error) {
	s, err := launch(name, o, logPath)
	if err != nil {
		return nil, err
	}
	return s, s.WaitReady(ctx)
}

// launch starts a server as o says with its output in logPath.
func launch(name string, o camdtest.Options, logPath string) (*server, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	o.Log = f
	p, err := camdtest.Launch(o)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, Proc: p, logPath: logPath}
	track(s)
	go func() {
		<-p.Done() // its output is all written
		f.Close()
		untrack(s)
	}()
	return s, nil
}

func (s *server) pid() int { return s.Pid() }

func (s *server) url(path string) string { return "http://" + s.Addr + path }

// stop asks the server to shut down as a supervisor would (SIGTERM) and
// kills it after 15 s.
func (s *server) stop() error {
	code, err := s.Stop()
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s after SIGTERM: %v\n%s", s.name, s.Err(), s.tail())
	}
	return nil
}

// kill ends the process at once and waits for it.
func (s *server) kill() { s.Kill() }

// tail returns the end of the server's log, for error messages.
func (s *server) tail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. Start-up is timed from exec, before the server could say which port
// it got, so the poller needs to know the port in advance.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
