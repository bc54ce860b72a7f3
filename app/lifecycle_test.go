package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/app"
	"camd/auth"
	"camd/config"
)

// lifecycleLog records the calls the host makes on test modules, in order.
type lifecycleLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *lifecycleLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *lifecycleLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// lifecycleModule implements every optional interface and records each
// call; fail names the call that fails, "provision" or "validate".
type lifecycleModule struct {
	id       string
	log      *lifecycleLog
	fail     string
	deps     *app.Deps // what Provision was handed
	runEnded chan struct{}
}

func (m *lifecycleModule) Provision(d app.Deps) error {
	m.log.add("provision " + m.id)
	*m.deps = d
	if m.fail == "provision" {
		return errors.New("cannot provision on purpose")
	}
	return nil
}

func (m *lifecycleModule) Validate() error {
	m.log.add("validate " + m.id)
	if m.fail == "validate" {
		return errors.New("invalid on purpose")
	}
	return nil
}

func (m *lifecycleModule) Run(ctx context.Context) {
	m.log.add("run " + m.id)
	<-ctx.Done()
	close(m.runEnded)
}

func (m *lifecycleModule) Cleanup() error {
	m.log.add("cleanup " + m.id)
	return nil
}

func lifecycleInfo(id string, log *lifecycleLog, fail string, deps *app.Deps, runEnded chan struct{}) app.ModuleInfo {
	return app.ModuleInfo{
		ID:     id,
		Scopes: []auth.Scope{{Name: id + ":read", Description: "reads " + id}},
		Flags:  []config.Flag{{Name: id + "-path", Default: "/default/" + id}},
		New: func() app.Module {
			return &lifecycleModule{id: id, log: log, fail: fail, deps: deps, runEnded: runEnded}
		},
	}
}

// TestModuleLifecycle: the host provisions modules in registry order, then
// validates them, runs their background work while it serves and cleans
// them up in reverse at stop; a module gets only its own flags, and a data
// directory of its own named after its ID.
func TestModuleLifecycle(t *testing.T) {
	var log lifecycleLog
	var depsA, depsB app.Deps
	endA, endB := make(chan struct{}), make(chan struct{})
	reg := standardRegistry(lifecycleInfo("test.b", &log, "", &depsB, endB), lifecycleInfo("test.a", &log, "", &depsA, endA))
	s := startServer(t, "", serverOpts{registry: reg, cfg: func(c *config.Config) {
		c.Modules = config.Values{"test.a-path": "/set/a"}
	}})
	if got := depsA.Config; len(got) != 1 || got.String("test.a-path") != "/set/a" {
		t.Errorf("test.a's Config %v, want only its own flag, as set", got)
	}
	if got := depsB.Config; len(got) != 1 || got.String("test.b-path") != "/default/test.b" {
		t.Errorf("test.b's Config %v, want only its own flag, at its default", got)
	}
	if depsA.Auth == nil || depsA.Echo == nil || depsA.Clock == nil || depsA.Log == nil {
		t.Error("Deps without the auth service, router, clock or log")
	}
	if !slices.ContainsFunc(depsA.Auth.Scopes(), func(sc auth.Scope) bool { return sc.Name == "test.a:read" }) {
		t.Errorf("the auth service's scopes %v lack the module's", depsA.Auth.Scopes())
	}
	dir, err := depsA.DataDir()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.DataDir, "test.a")); err != nil || !fi.IsDir() || dir.Join("x") != filepath.Join(s.DataDir, "test.a", "x") {
		t.Errorf("test.a's data directory: %v %v, want %s", fi, err, filepath.Join(s.DataDir, "test.a"))
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "test.b")); !os.IsNotExist(err) {
		t.Errorf("test.b never asked for a data directory, yet: %v", err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	<-endA
	<-endB
	calls := log.get()
	want := []string{"provision test.a", "provision test.b", "validate test.a", "validate test.b"}
	if !slices.Equal(calls[:4], want) {
		t.Errorf("calls %q, want them to begin %q", calls, want)
	}
	// Run is concurrent: both ran, in either order, before both cleanups.
	if rest := calls[4:]; len(rest) != 4 || !slices.Contains(rest[:2], "run test.a") || !slices.Contains(rest[:2], "run test.b") ||
		!slices.Equal(rest[2:], []string{"cleanup test.b", "cleanup test.a"}) {
		t.Errorf("calls %q, want both runs, then cleanup in reverse order", calls)
	}
}

// TestModuleValidateFailure: a module that fails Validate stops camd from
// starting, naming it, and every module provisioned is cleaned up, in
// reverse order; none ran.
func TestModuleValidateFailure(t *testing.T) {
	var log lifecycleLog
	var deps app.Deps
	reg := standardRegistry(lifecycleInfo("test.a", &log, "", &deps, make(chan struct{})), lifecycleInfo("test.b", &log, "validate", &deps, make(chan struct{})))
	_, err := app.New(defaultConfig(t.TempDir()), app.Options{Registry: reg, PasswordParams: &cheapHash})
	if err == nil || !strings.Contains(err.Error(), `"test.b"`) {
		t.Fatalf("New: %v, want an error naming test.b", err)
	}
	want := []string{"provision test.a", "provision test.b", "validate test.a", "validate test.b", "cleanup test.b", "cleanup test.a"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// TestModuleProvisionFailure: a module whose Provision fails stops camd
// from starting, naming it; it and every module provisioned before it are
// cleaned up, in reverse order, and the modules after it are never made.
func TestModuleProvisionFailure(t *testing.T) {
	var log lifecycleLog
	var deps app.Deps
	reg := standardRegistry(lifecycleInfo("test.a", &log, "", &deps, make(chan struct{})),
		lifecycleInfo("test.b", &log, "provision", &deps, make(chan struct{})),
		lifecycleInfo("test.c", &log, "", &deps, make(chan struct{})))
	_, err := app.New(defaultConfig(t.TempDir()), app.Options{Registry: reg, PasswordParams: &cheapHash})
	if err == nil || !strings.Contains(err.Error(), `"test.b"`) {
		t.Fatalf("New: %v, want an error naming test.b", err)
	}
	want := []string{"provision test.a", "provision test.b", "cleanup test.b", "cleanup test.a"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// stuckModule's handler waits for its request's context to end (or for
// release, so a failing test ends), then takes a moment to finish, as a
// handler does that was mid-write; Cleanup notes whether it had.
type stuckModule struct {
	entered, release chan struct{}
	log              *lifecycleLog
	finished         atomic.Bool
}

func (m *stuckModule) Provision(d app.Deps) error {
	d.Echo.GET("/test/stuck", func(c echo.Context) error {
		close(m.entered)
		select {
		case <-c.Request().Context().Done():
		case <-m.release:
		}
		time.Sleep(50 * time.Millisecond)
		m.finished.Store(true)
		return c.Request().Context().Err()
	})
	return nil
}

func (m *stuckModule) Cleanup() error {
	m.log.add(fmt.Sprintf("cleanup, handler finished %v", m.finished.Load()))
	return nil
}

// TestShutdownPastGrace: a request still in flight when the shutdown grace
// ends has its connection closed and its context ended, and its handler
// returns before the modules clean up; Serve says the grace ran out.
func TestShutdownPastGrace(t *testing.T) {
	var log lifecycleLog
	m := &stuckModule{entered: make(chan struct{}), release: make(chan struct{}), log: &log}
	defer close(m.release)
	reg := standardRegistry(app.ModuleInfo{ID: "test.stuck", New: func() app.Module { return m }})
	a, err := app.New(defaultConfig(t.TempDir()), app.Options{Registry: reg, PasswordParams: &cheapHash,
		Timeouts: app.Timeouts{Shutdown: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	answered := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/test/stuck")
		if err == nil {
			res.Body.Close()
		}
		answered <- err
	}()
	<-m.entered
	stop()
	if err := <-served; err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve: %v, want the shutdown's deadline exceeded", err)
	}
	if got, want := log.get(), []string{"cleanup, handler finished true"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q: the handler ended before Cleanup", got, want)
	}
	select {
	case err := <-answered:
		if err == nil {
			t.Error("the stuck request got an answer; want its connection closed")
		}
	case <-time.After(5 * time.Second):
		t.Error("the stuck request's connection is still open")
	}
}
