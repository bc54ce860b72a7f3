// Package camdtest builds and starts the real camd binary for the tests
// (e2e), the benchmark (bench) and the scripts (scripts/rss): the one place
// that knows how camd is launched, when it is ready and what it prints.
//
// Readiness is signalled, not scraped: the child gets NOTIFY_SOCKET and
// camd sends "READY=1\nSTATUS=listening on ADDR" there once it listens
// (platform/sdnotify). The URL comes from that address.
//
// Start and TryStart are for tests and register a cleanup; Launch and
// Proc.WaitReady are the same without testing.TB, for programs.
package camdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout     = 30 * time.Second // start to READY=1; first starts hash a password
	DefaultStopTimeout = 15 * time.Second // SIGTERM to exit
)

// Options say what to run. With only Bin (and Dir) set, it is
//
//	Bin serve --listen 127.0.0.1:0 --log-format json --data-dir Dir --clock system
//
// with the caller's environment.
type Options struct {
	// Bin is the binary. Start and TryStart build "camd" when it is "".
	Bin string
	// Wrapper runs Bin under another command, such as
	// {"qemu-arm-static"}: Wrapper[0] Wrapper[1:]... Bin args...
	Wrapper []string
	// Args replaces the whole argument list after Bin (a command other
	// than serve, or another server that speaks the readiness protocol).
	// Dir and Flags are then unused.
	Args []string
	// Dir is the data directory. Start and TryStart use t.TempDir()
	// when it is "".
	Dir string
	// Flags come after the serve defaults, so they win: "--clock=ntp".
	Flags []string
	// Env is added to the environment (NAME=value); later entries win.
	Env []string
	// BaseEnv replaces os.Environ() as the environment Env is added to.
	BaseEnv []string
	// Scheme of URL, "http" or "https"; "" guesses from the --tls flags
	// and CAMD_TLS* variables (see speaksTLS).
	Scheme string
	// Timeout bounds the wait for READY=1 (DefaultTimeout when 0).
	Timeout time.Duration
	// StopTimeout bounds the wait after SIGTERM (DefaultStopTimeout).
	StopTimeout time.Duration
	// Filter sees every output line without its newline; a line it
	// reports taken is not kept. It runs on the reader's goroutine for
	// the life of the process, so it must be quick (the child blocks on
	// a full pipe).
	Filter func(line []byte) bool
	// Log, when set, receives the output (never the password line), and
	// memory keeps only what came before readiness.
	Log io.Writer
}

// serveArgs are camd serve's arguments for o.
func (o Options) serveArgs() []string {
	if o.Args != nil {
		return o.Args
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}
	if o.Dir != "" {
		args = append(args, "--data-dir", o.Dir)
	}
	return append(append(args, "--clock", "system"), o.Flags...)
}

// Proc is one running binary.
type Proc struct {
	// URL is scheme://Addr, once ready.
	URL string
	// Addr is the host:port camd said it listens on, once ready.
	Addr string
	// Password is the initial owner password this start printed; "" when
	// the data directory already had one. Set by the methods that wait
	// (WaitReady, Wait, Stop, Kill), on the caller's goroutine.
	Password string
	// Dir is the data directory ("" with Options.Args).
	Dir string
	// Client is a plain client with a timeout, for URL.
	Client *http.Client
	// Cmd is the command, for its pid; ProcessState is valid after Done.
	Cmd *exec.Cmd

	opts    Options
	out     *output
	notify  *Notify
	done    chan struct{}
	waitErr error
}

// Launch starts the binary and returns at once; WaitReady waits for it.
// Whoever launches must Kill or Stop it.
func Launch(opts Options) (*Proc, error) {
	if opts.Bin == "" {
		return nil, errors.New("camdtest: Options.Bin is empty")
	}
	args := append(append([]string(nil), opts.Wrapper...), opts.Bin)
	args = append(args, opts.serveArgs()...)
	n, err := ListenNotify()
	if err != nil {
		return nil, err
	}
	out, childEnd, err := newOutput(opts.Filter, opts.Log)
	if err != nil {
		n.Close()
		return nil, err
	}
	env := opts.BaseEnv
	if env == nil {
		env = os.Environ()
	}
	cmd := exec.Command(args[0], args[1:]...)
	// Ours last: an outer supervisor's NOTIFY_SOCKET must not get it.
	cmd.Env = append(append(append([]string(nil), env...), opts.Env...), n.Env())
	cmd.Stdout, cmd.Stderr = childEnd, childEnd
	// The kernel kills the child if this process dies without cleaning
	// up (a panic, a test timeout), so no server outlives its test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		n.Close()
		out.r.Close()
		out.closeWrite()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(args[0]), err)
	}
	p := &Proc{
		Dir: opts.Dir, Cmd: cmd, Client: &http.Client{Timeout: 10 * time.Second},
		opts: opts, out: out, notify: n, done: make(chan struct{}),
	}
	if opts.Args != nil {
		p.Dir = ""
	}
	go out.read()
	go p.reap()
	return p, nil
}

// reap waits for the exit, then for the reader to drain the pipe.
func (p *Proc) reap() {
	err := p.Cmd.Wait()
	p.out.closeWrite()
	select {
	case <-p.out.eof:
	case <-time.After(5 * time.Second):
		// Something the child left behind holds the pipe open.
		p.out.r.Close()
		<-p.out.eof
	}
	p.notify.Close()
	p.waitErr = err
	close(p.done)
}

func (p *Proc) name() string { return filepath.Base(p.opts.Bin) }

// WaitReady waits for READY=1, at most Options.Timeout, and sets Addr,
// URL and Password. On failure the process is gone and the error holds
// its output.
func (p *Proc) WaitReady(ctx context.Context) error {
	timeout := p.opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("not ready within %v", timeout))
	defer cancel()
	st, err := p.notify.Wait(ctx, p.done)
	if errors.Is(err, ErrExited) {
		return fmt.Errorf("%s exited before it was ready: %v\n%s", p.name(), p.waitErr, p.Logs())
	}
	if err != nil {
		p.Kill()
		return fmt.Errorf("%s: %w:\n%s", p.name(), err, p.Logs())
	}
	addr := st.ListenAddr()
	if addr == "" {
		p.Kill()
		return fmt.Errorf("%s sent READY=1 without STATUS=listening on ADDR (got %q):\n%s", p.name(), st["STATUS"], p.Logs())
	}
	p.Addr, p.URL = addr, p.scheme()+"://"+addr
	select {
	case <-p.out.sync():
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("%s: output not read within %v:\n%s", p.name(), timeout, p.Logs())
	}
	p.settle()
	return nil
}

func (p *Proc) scheme() string {
	if p.opts.Scheme != "" {
		return p.opts.Scheme
	}
	env := p.opts.BaseEnv
	if env == nil {
		env = os.Environ()
	}
	if speaksTLS(p.opts.serveArgs(), append(append([]string(nil), env...), p.opts.Env...)) {
		return "https"
	}
	return "http"
}

// speaksTLS says whether camd serves HTTPS with these arguments and this
// environment: --tls auto or files, or a certificate and a key, which
// imply files. Flags win over CAMD_* variables, the last of each wins.
func speaksTLS(args, env []string) bool {
	// Settings in the order they apply, the variables' first.
	var settings [][2]string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if name, ok := strings.CutPrefix(k, "CAMD_"); ok {
			settings = append(settings, [2]string{strings.ToLower(strings.ReplaceAll(name, "_", "-")), v})
		}
	}
	for i, a := range args {
		name, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasValue && i+1 < len(args) {
			v = args[i+1]
		}
		settings = append(settings, [2]string{name, v})
	}
	mode, cert, key := "", false, false
	for _, kv := range settings {
		switch kv[0] {
		case "tls":
			mode = kv[1]
		case "tls-cert":
			cert = kv[1] != ""
		case "tls-key":
			key = kv[1] != ""
		}
	}
	switch mode {
	case "auto", "files":
		return true
	case "":
		return cert && key
	}
	return false
}

// settle takes what the reader learnt, on the caller's goroutine.
func (p *Proc) settle() {
	if pw := p.out.initialPassword(); pw != "" && p.Password == "" {
		p.Password = pw
	}
}

// Done is closed once the process has exited and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the exit and returns cmd.Wait's error.
func (p *Proc) Wait() error {
	<-p.done
	p.settle()
	return p.waitErr
}

// Err is cmd.Wait's error, once Done.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Pid is the process id (the wrapper's, under one; qemu-user is the guest).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Output is everything the process wrote on stdout and stderr so far, the
// password line included, less what Filter took (and, with Log, less what
// came after readiness).
func (p *Proc) Output() string { return p.out.String() }

// Logs is Output without the initial-password line: safe to print.
func (p *Proc) Logs() string { return WithoutPassword(p.out.String()) }

// Notices are the sd_notify datagrams received so far.
func (p *Proc) Notices() []string { return p.notify.Received() }

// Stop sends SIGTERM, waits at most Options.StopTimeout and returns the
// exit code (-1 when killed by a signal). After the timeout it kills the
// process and says so.
func (p *Proc) Stop() (int, error) {
	timeout := p.opts.StopTimeout
	if timeout == 0 {
		timeout = DefaultStopTimeout
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return -1, fmt.Errorf("SIGTERM %s: %w", p.name(), err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		return -1, fmt.Errorf("%s did not exit within %v of SIGTERM:\n%s", p.name(), timeout, p.Logs())
	}
	p.settle()
	return p.Cmd.ProcessState.ExitCode(), nil
}

// Kill is kill -9, then waits for the exit: no chance to clean up.
// Killing an exited process does nothing.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	<-p.done
	p.settle()
}

// TryStart launches and waits for readiness, for a test that expects the
// start may fail (a damaged data directory). On a failure after the launch
// it returns the exited Proc with the error, so its Output and exit code can
// be checked. The process is killed when the test ends.
func TryStart(tb testing.TB, opts Options) (*Proc, error) {
	tb.Helper()
	if opts.Bin == "" {
		opts.Bin = Build(tb, "camd")
	}
	if opts.Dir == "" && opts.Args == nil {
		opts.Dir = tb.TempDir()
	}
	p, err := Launch(opts)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(p.Kill)
	return p, p.WaitReady(tb.Context())
}

// Start is TryStart for a test that needs the start to succeed.
func Start(tb testing.TB, opts Options) *Proc {
	tb.Helper()
	p, err := TryStart(tb, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
