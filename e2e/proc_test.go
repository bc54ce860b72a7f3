// Package e2e runs the real camd binary as a user would: built with go build,
// started as a process on a loopback port with a real data directory, driven
// over HTTP, stopped with signals or kill -9.
package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"camd/internal/apitest"
	"camd/internal/testlog"
)

// binDir holds the camd binary, built once for the whole package.
var (
	binDir    string
	buildOnce sync.Once
	bin       string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "camd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if v, err := apitest.Default(); err == nil && testing.Verbose() {
		fmt.Printf("OpenAPI: %d exchanges checked against modules/apidoc/openapi.yaml\n", v.Checked())
	}
	os.Exit(code)
}

// camd builds the binary on first use. It runs inside a test, after go test
// starts recording which files the tests read (see readSources).
func camd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildErr = readSources(".."); buildErr != nil {
			return
		}
		bin = filepath.Join(binDir, "camd")
		out, err := exec.Command("go", "build", "-o", bin, "camd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build camd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// readSources reads every Go source and module file of camd, and every file
// it may embed. The binary is built by a subprocess, so without this go test
// would not know these tests depend on the sources and would replay a cached
// pass after a change.
func readSources(root string) error {
	// The kinds of file camd may embed: templates, styles, the OpenAPI
	// document. A change to one changes the binary too.
	embeddable := []string{".html", ".tmpl", ".gohtml", ".css", ".js", ".svg", ".yaml", ".yml"}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		read := strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum"
		for _, suffix := range embeddable {
			read = read || strings.HasSuffix(path, suffix)
		}
		if read {
			_, err = os.ReadFile(path)
		}
		return err
	})
}

// proc is one running camd.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	URL      string
	Password string // the initial owner password, when this start printed one
	stderr   *testlog.Buffer
	client   *http.Client // nil: the package's plain client
	done     chan struct{}
	waitErr  error
}

// start runs camd serve on 127.0.0.1 with an ephemeral port and JSON logs,
// and waits until it listens. Each extra starting with "-" is a flag, any
// other is a NAME=value environment variable.
func start(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	p, err := tryStart(t, dataDir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveCmd is the camd serve command on dataDir: a free loopback port, JSON
// logs, and --clock system unless the test says otherwise (no NTP traffic).
// Each extra starting with "-" is a flag, any other a NAME=value
// environment variable.
func serveCmd(t *testing.T, dataDir string, extra []string) *exec.Cmd {
	args := []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir", dataDir, "--clock", "system"}
	env := os.Environ()
	for _, e := range extra {
		if strings.HasPrefix(e, "-") {
			args = append(args, e)
		} else {
			env = append(env, e)
		}
	}
	cmd := exec.Command(camd(t), args...)
	cmd.Env = env
	return cmd
}

// tryStart is start for callers that expect the start to fail.
func tryStart(t *testing.T, dataDir string, extra ...string) (*proc, error) {
	t.Helper()
	cmd := serveCmd(t, dataDir, extra)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{t: t, cmd: cmd, stderr: &testlog.Buffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(pipe, p.stderr))
		for sc.Scan() {
			line := sc.Text()
			if pw, ok := strings.CutPrefix(line, "initial owner password: "); ok {
				p.Password = pw
				continue
			}
			var rec struct {
				Msg, Addr string
				TLS       bool
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				scheme := "http://"
				if rec.TLS {
					scheme = "https://"
				}
				addr <- scheme + rec.Addr
			}
		}
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case a := <-addr:
		p.URL = a
		return p, nil
	case <-p.done:
		return p, fmt.Errorf("camd exited before listening: %v\n%s", p.waitErr, p.stderr.String())
	case <-time.After(15 * time.Second):
		p.kill()
		return p, fmt.Errorf("camd did not listen within 15s:\n%s", p.stderr.String())
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatal("camd did not exit within 15s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill is kill -9: no chance to clean up.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// logs returns stderr without the initial-password line.
func (p *proc) logs() string {
	var out []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if !strings.HasPrefix(l, "initial owner password: ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type response struct {
	Status int
	Header http.Header
	Body   string
}

func (r response) field(t *testing.T, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("not JSON: %q", r.Body)
	}
	return m[name]
}

var client = &http.Client{Timeout: 10 * time.Second}

func (p *proc) do(method, path, body string, headers ...string) response {
	p.t.Helper()
	r, err := p.try(method, path, body, headers...)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

func (p *proc) try(method, path, body string, headers ...string) (response, error) {
	req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			req.Header.Set(k, v) // replaces the JSON default
			continue
		}
		req.Header.Add(k, v)
	}
	c := p.client
	if c == nil {
		c = client
	}
	// Every exchange is checked against the OpenAPI document.
	res, err := apitest.Client(p.t, c, nil).Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: string(b)}, err
}

func (p *proc) login(password string) string {
	p.t.Helper()
	r := p.do("POST", "/api/login", `{"user":"owner","pass":"`+password+`"}`)
	if r.Status != http.StatusOK {
		p.t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return r.field(p.t, "token").(string)
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }

func basicAuth(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// run runs a camd command to completion with stdin and returns its exit code
// and combined output.
func run(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(camd(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run camd %v: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}
