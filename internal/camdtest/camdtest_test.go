package camdtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/sdnotify"
)

// fakeEnv makes the test binary a fake camd (see fake) instead of running
// the tests.
const fakeEnv = "CAMDTEST_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fake(mode))
	}
	os.Exit(m.Run())
}

// fake plays camd's side of a start as mode says:
//   - ready: a log line, the password line, listen, READY=1 with STATUS,
//     a log line per request, STOPPING=1 and exit 0 on SIGTERM;
//   - exit: a complaint on stderr and exit 3 before any READY;
//   - silent: never ready;
//   - nostatus: READY=1 without an address.
func fake(mode string) int {
	fmt.Fprintln(os.Stderr, `{"msg":"starting"}`)
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "cannot start: the data directory is damaged")
		return 3
	case "silent":
		time.Sleep(time.Minute)
		return 0
	case "nostatus":
		sdnotify.Notify(sdnotify.Ready)
		time.Sleep(time.Minute)
		return 0
	}
	fmt.Fprintln(os.Stderr, PasswordPrefix+"fake-initial-pw")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, `{"msg":"request","path":%q}`+"\n", r.URL.Path)
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	if _, err := sdnotify.Notify(sdnotify.Ready + "\nSTATUS=listening on " + ln.Addr().String()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-stop
	sdnotify.Notify(sdnotify.Stopping)
	srv.Close()
	fmt.Fprintln(os.Stderr, `{"msg":"stopped"}`)
	return 0
}

// fakeOptions runs this test binary as a fake camd in mode.
func fakeOptions(t *testing.T, mode string) Options {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{Bin: self, Args: []string{}, Env: []string{fakeEnv + "=" + mode}}
}

func get(t *testing.T, p *Proc, path string) {
	t.Helper()
	res, err := p.Client.Get(p.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, res.StatusCode)
	}
}

func TestStart(t *testing.T) {
	p := Start(t, fakeOptions(t, "ready"))
	// Set by the time Start returns, though it came on another channel
	// than READY=1.
	if p.Password != "fake-initial-pw" {
		t.Errorf("Password = %q", p.Password)
	}
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || p.URL != "http://"+p.Addr {
		t.Errorf("URL %q, Addr %q", p.URL, p.Addr)
	}
	get(t, p, "/healthz")
	code, err := p.Stop()
	if err != nil || code != 0 {
		t.Fatalf("Stop = %d, %v", code, err)
	}
	if got := strings.Count(p.Output(), "fake-initial-pw"); got != 1 {
		t.Errorf("Output holds the password %d times, want once:\n%s", got, p.Output())
	}
	logs := p.Logs()
	if strings.Contains(logs, "fake-initial-pw") {
		t.Errorf("Logs holds the password:\n%s", logs)
	}
	for _, want := range []string{`"msg":"starting"`, `"path":"/healthz"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("Logs lacks %s:\n%s", want, logs)
		}
	}
	if n := p.Notices(); len(n) != 2 || !strings.HasPrefix(n[0], "READY=1\n") || n[1] != "STOPPING=1" {
		t.Errorf("Notices = %q", n)
	}
}

func TestTryStartFails(t *testing.T) {
	tests := []struct {
		mode    string
		timeout time.Duration
		want    []string // in the error
		code    int      // exit code
	}{
		{"exit", 0, []string{"exited before it was ready", "the data directory is damaged"}, 3},
		{"silent", 300 * time.Millisecond, []string{"not ready within 300ms", `"msg":"starting"`}, -1},
		{"nostatus", 0, []string{"without STATUS=listening on ADDR"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			opts := fakeOptions(t, tt.mode)
			opts.Timeout = tt.timeout
			p, err := TryStart(t, opts)
			if err == nil {
				t.Fatal("started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("the process still runs after a failed start")
			}
			if code := p.Cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
		})
	}
}

func TestFilterAndLog(t *testing.T) {
	t.Run("filter", func(t *testing.T) {
		var requests atomic.Int32
		opts := fakeOptions(t, "ready")
		opts.Filter = func(line []byte) bool {
			if strings.Contains(string(line), `"msg":"request"`) {
				requests.Add(1)
				return true
			}
			return false
		}
		p := Start(t, opts)
		for range 3 {
			get(t, p, "/x")
		}
		p.Stop()
		if n := requests.Load(); n != 3 {
			t.Errorf("filter took %d request lines, want 3", n)
		}
		if strings.Contains(p.Output(), "request") || !strings.Contains(p.Output(), "stopped") {
			t.Errorf("Output:\n%s", p.Output())
		}
	})
	t.Run("log", func(t *testing.T) {
		log := &testlog.Buffer{} // read here while the reader writes
		opts := fakeOptions(t, "ready")
		opts.Log = log
		p := Start(t, opts)
		get(t, p, "/after-ready")
		p.Stop()
		if strings.Contains(log.String(), "fake-initial-pw") {
			t.Errorf("the password went to the log:\n%s", log.String())
		}
		for _, want := range []string{"starting", "/after-ready", "stopped"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, log.String())
			}
		}
		// Memory keeps only the start.
		if out := p.Output(); !strings.Contains(out, "starting") || strings.Contains(out, "/after-ready") {
			t.Errorf("Output:\n%s", out)
		}
	})
}

func TestLaunchAndKill(t *testing.T) {
	p, err := Launch(fakeOptions(t, "ready"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if st := p.Cmd.ProcessState; st.Exited() || p.Err() == nil {
		t.Errorf("after Kill: %v, %v", st, p.Err())
	}
	if _, err := os.Stat(p.notify.Path()); !os.IsNotExist(err) {
		t.Errorf("notify socket left behind: %v", err)
	}
}

func TestSpeaksTLS(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want bool
	}{
		{"nothing", []string{"serve", "--listen", "127.0.0.1:0"}, nil, false},
		{"--tls=auto", []string{"serve", "--tls=auto"}, nil, true},
		{"--tls files", []string{"serve", "--tls", "files"}, nil, true},
		{"--tls=off", []string{"serve", "--tls=off"}, nil, false},
		{"cert and key imply files", []string{"--tls-cert=c", "--tls-key=k"}, nil, true},
		{"cert alone", []string{"--tls-cert=c"}, nil, false},
		{"CAMD_TLS", nil, []string{"CAMD_TLS=auto"}, true},
		{"flag wins over variable", []string{"--tls=off"}, []string{"CAMD_TLS=auto"}, false},
		{"last flag wins", []string{"--tls=auto", "--tls=off"}, nil, false},
		{"variables' cert and key", nil, []string{"CAMD_TLS_CERT=c", "CAMD_TLS_KEY=k"}, true},
	}
	for _, tt := range tests {
		if got := speaksTLS(tt.args, tt.env); got != tt.want {
			t.Errorf("%s: speaksTLS(%q, %q) = %v, want %v", tt.name, tt.args, tt.env, got, tt.want)
		}
	}
}

func TestPasswordIn(t *testing.T) {
	out := "a\n" + PasswordPrefix + "pw1 \nb"
	if got := PasswordIn(out); got != "pw1" {
		t.Errorf("PasswordIn = %q", got)
	}
	if got := WithoutPassword(out); got != "a\nb" {
		t.Errorf("WithoutPassword = %q", got)
	}
	if got := PasswordIn("a\nb"); got != "" {
		t.Errorf("PasswordIn without one = %q", got)
	}
}
