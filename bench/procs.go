package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a camd or reference process the bench started.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string        // host:port it listens on
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // cmd.Wait's result, valid after exited
	logPath string        // its output, for error messages
	log     *os.File      // logPath open for appending; closed once reaped
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
// can be removed after it.
func killAll() {
	live.Lock()
	var all []*server
	for s := range live.m {
		all = append(all, s)
	}
	live.Unlock()
	deadline := time.After(5 * time.Second)
	for _, s := range all {
		s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-deadline:
			return
		}
	}
}

// childAttrs makes the kernel kill a child when the bench dies without
// running its defers (a panic in a goroutine, SIGKILL), so no server is
// left behind on the benchmark's ports and CPUs.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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

// camdStart is what camd said while starting.
type camdStart struct {
	password string // the initial owner password, only on a first start
	addr     string
	lines    []string // the log lines up to "listening", without the password
}

// launchCamd starts camd on listen. The channel receives what camd said
// once it has logged "listening". camd's stderr (its log, the access log
// included) is read by the bench until then and copied to logPath
// afterwards: the access log stays on, as shipped, and costs camd what it
// costs on a cam. The password line is never written to the file.
//
// The per-address connection cap is lifted: every client of the bench is
// 127.0.0.1, and its load runs open 32 connections each beside the API
// client's, where a cam's clients are many addresses. The reference has no
// cap either.
func launchCamd(bin, dataDir, listen, logPath string, env []string) (*server, <-chan camdStart, error) {
	cmd := exec.Command(bin, "--listen", listen, "--data-dir", dataDir, "--clock", "system", "--log-format", "json", "--max-conns-per-addr", "0")
	cmd.Env = env
	cmd.SysProcAttr = childAttrs()
	s, pipe, err := launch("camd", cmd, logPath)
	if err != nil {
		return nil, nil, err
	}
	started := make(chan camdStart, 1)
	go func() {
		defer s.reap()
		r := bufio.NewReader(pipe)
		var st camdStart
		for {
			line, err := r.ReadString('\n')
			line = strings.TrimRight(line, "\n")
			if p, ok := strings.CutPrefix(line, "initial owner password: "); ok {
				st.password = p
			} else if line != "" {
				st.lines = append(st.lines, line)
				s.appendLog(line + "\n")
				var rec struct{ Msg, Addr string }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
					st.addr = rec.Addr
					started <- st
					break
				}
			}
			if err != nil {
				return
			}
		}
		s.copyLog(r)
	}()
	return s, started, nil
}

// startCamd starts camd and returns once it listens.
func startCamd(ctx context.Context, bin, dataDir, listen, logPath string, env []string) (*server, camdStart, error) {
	s, started, err := launchCamd(bin, dataDir, listen, logPath, env)
	if err != nil {
		return nil, camdStart{}, err
	}
	st, err := awaitListening(ctx, s, started)
	if err != nil {
		return nil, camdStart{}, err
	}
	s.addr = st.addr
	return s, st, nil
}

// launchReference starts this binary as the reference server on listen.
// The channel receives the address it printed.
func launchReference(self, key, listen, logPath string) (*server, <-chan string, error) {
	cmd := exec.Command(self, "-reference", "-addr", listen, "-key", key)
	cmd.Env = childEnv()
	cmd.SysProcAttr = childAttrs()
	s, pipe, err := launch("reference", cmd, logPath)
	if err != nil {
		return nil, nil, err
	}
	addr := make(chan string, 1)
	go func() {
		defer s.reap()
		r := bufio.NewReader(pipe)
		line, err := r.ReadString('\n')
		if err == nil {
			addr <- strings.TrimSpace(line)
		}
		s.copyLog(r)
	}()
	return s, addr, nil
}

// startReference starts the reference server and returns once it listens.
func startReference(ctx context.Context, self, key, listen, logPath string) (*server, error) {
	s, listening, err := launchReference(self, key, listen, logPath)
	if err != nil {
		return nil, err
	}
	addr, err := awaitListening(ctx, s, listening)
	if err != nil {
		return nil, err
	}
	s.addr = addr
	return s, nil
}

// awaitListening waits for a server to say it listens, to exit, or for ctx
// to end; on failure the process is gone when it returns.
func awaitListening[T any](ctx context.Context, s *server, listening <-chan T) (T, error) {
	var zero T
	select {
	case v := <-listening:
		return v, nil
	case <-s.exited:
		return zero, fmt.Errorf("%s exited before listening: %v\n%s", s.name, s.waitErr, s.tail())
	case <-ctx.Done():
		s.kill()
		return zero, fmt.Errorf("%s did not listen: %w\n%s", s.name, context.Cause(ctx), s.tail())
	}
}

// launch starts cmd with its stdout (reference) or stderr (camd) on the
// returned pipe and the other stream in logPath.
func launch(name string, cmd *exec.Cmd, logPath string) (*server, io.ReadCloser, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	s := &server{name: name, cmd: cmd, exited: make(chan struct{}), logPath: logPath, log: f}
	var pipe io.ReadCloser
	if name == "camd" {
		pipe, err = cmd.StderrPipe()
	} else {
		pipe, err = cmd.StdoutPipe()
		cmd.Stderr = f
	}
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	track(s)
	return s, pipe, nil
}

// appendLog adds text to the server's log file.
func (s *server) appendLog(text string) { s.log.WriteString(text) }

// copyLog copies the rest of r into the log file with large writes, which
// costs the bench (and so the CPU the servers share with it) little. If the
// file cannot take it, the rest is discarded: a server must never block on
// a full pipe.
func (s *server) copyLog(r io.Reader) {
	if _, err := bufio.NewReaderSize(r, 64<<10).WriteTo(s.log); err != nil {
		io.Copy(io.Discard, r)
	}
}

// reap waits for the process once its output is drained; Wait must come
// after the last read from the pipe.
func (s *server) reap() {
	s.waitErr = s.cmd.Wait()
	s.log.Close()
	untrack(s)
	close(s.exited)
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) url(path string) string { return "http://" + s.addr + path }

// stop asks the server to shut down as a supervisor would (SIGTERM) and
// kills it after 15 s.
func (s *server) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("%s after SIGTERM: %v\n%s", s.name, s.waitErr, s.tail())
		}
		return nil
	case <-time.After(15 * time.Second):
		s.kill()
		return fmt.Errorf("%s did not exit within 15s of SIGTERM", s.name)
	}
}

// kill ends the process at once and waits for it.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

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
