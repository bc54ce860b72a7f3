// Package e2e runs the real camd binary as a user would: built with go build,
// started as a process on a loopback port with a real data directory, driven
// over HTTP, stopped with signals or kill -9.
package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"camd/internal/apitest"
	"camd/internal/camdtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	camdtest.RemoveBuilds()
	if v, err := apitest.Default(); err == nil && testing.Verbose() {
		fmt.Printf("OpenAPI: %d exchanges checked against modules/apidoc/openapi.yaml\n", v.Checked())
	}
	os.Exit(code)
}

// camd builds the binary on first use (camdtest.Build). It runs inside a
// test, after go test starts recording which files the tests read.
func camd(t *testing.T) string {
	t.Helper()
	return camdtest.Build(t, "camd")
}

// proc is one running camd, or only a URL (a container, a phone's view of
// a server) for the package's HTTP helpers.
type proc struct {
	t        *testing.T
	cp       *camdtest.Proc // nil for a URL only
	cmd      *exec.Cmd
	URL      string
	Password string // the initial owner password, when this start printed one
	stderr   output
	client   *http.Client // nil: the package's plain client
	done     <-chan struct{}
}

// output is what camd wrote, the password line included.
type output struct{ cp *camdtest.Proc }

func (o output) String() string { return o.cp.Output() }

// start runs camd serve on 127.0.0.1 with an ephemeral port and JSON logs,
// and waits until it is ready. Each extra starting with "-" is a flag, any
// other is a NAME=value environment variable.
func start(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	p, err := tryStart(t, dataDir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveOptions are camdtest's defaults (a free loopback port, JSON logs,
// --clock system unless the test says otherwise: no NTP traffic) on dataDir.
// Each extra starting with "-" is a flag, any other a NAME=value
// environment variable.
func serveOptions(t *testing.T, dataDir string, extra []string) camdtest.Options {
	o := camdtest.Options{Bin: camd(t), Dir: dataDir}
	for _, e := range extra {
		if strings.HasPrefix(e, "-") {
			o.Flags = append(o.Flags, e)
		} else {
			o.Env = append(o.Env, e)
		}
	}
	return o
}

// tryStart is start for callers that expect the start to fail. Unless camd
// could not be run at all, it returns the proc, exited, with the error.
func tryStart(t *testing.T, dataDir string, extra ...string) (*proc, error) {
	t.Helper()
	return startWith(t, serveOptions(t, dataDir, extra))
}

// startWith starts camd as o says and wraps it for the package's helpers.
func startWith(t *testing.T, o camdtest.Options) (*proc, error) {
	t.Helper()
	cp, err := camdtest.TryStart(t, o)
	if cp == nil {
		return nil, err
	}
	return &proc{t: t, cp: cp, cmd: cp.Cmd, URL: cp.URL, Password: cp.Password, stderr: output{cp}, done: cp.Done()}, err
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.t.Helper()
	code, err := p.cp.Stop()
	if err != nil {
		p.t.Fatal(err)
	}
	return code
}

// kill is kill -9: no chance to clean up.
func (p *proc) kill() { p.cp.Kill() }

// logs returns stderr without the initial-password line.
func (p *proc) logs() string { return p.cp.Logs() }

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
