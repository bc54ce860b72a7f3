package camdtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// BuildOptions change how a binary is built. The zero value is a native
// build.
type BuildOptions struct {
	// Env is added to the environment, so it wins over what the caller
	// exported: GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0.
	Env []string
	// Flags are go build flags, such as -trimpath or -ldflags "-s -w".
	Flags []string
	// Dir is where go build runs ("": the current directory).
	Dir string
}

// ReleaseTags are the build tags scripts/dist.sh and the Dockerfile ship
// with; Compile adds them unless Flags name tags of their own, so that the
// binary tested is the binary shipped.
const ReleaseTags = "nethttpomithttp2"

// Compile runs go build -o out for pkg ("camd", or the package path of
// another camd binary).
func Compile(ctx context.Context, out, pkg string, o BuildOptions) error {
	args := append([]string{"build"}, o.Flags...)
	if !slices.ContainsFunc(o.Flags, func(f string) bool { return f == "-tags" || strings.HasPrefix(f, "-tags=") }) {
		args = append(args, "-tags", ReleaseTags)
	}
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s %s: %v\n%s", strings.Join(o.Env, " "), pkg, err, b)
	}
	return nil
}

// builds holds the binaries this test process built, each built once.
var builds struct {
	sync.Mutex
	dir     string
	bins    map[string]*built
	sources sync.Once
	srcErr  error
}

type built struct {
	once sync.Once
	path string
	err  error
}

// Build returns a native build of pkg, made on first use in this test
// process. It must run inside a test: see readSources.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	return BuildWith(tb, pkg, BuildOptions{})
}

// BuildWith is Build with options, such as a cross build for an emulated
// cam; each distinct pkg and options is built once.
func BuildWith(tb testing.TB, pkg string, o BuildOptions) string {
	tb.Helper()
	path, err := build(tb.Context(), pkg, o)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

func build(ctx context.Context, pkg string, o BuildOptions) (string, error) {
	key := strings.Join([]string{pkg, strings.Join(o.Env, " "), strings.Join(o.Flags, " "), o.Dir}, "\x00")
	builds.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*built{}
	}
	b, ok := builds.bins[key]
	if !ok {
		b = &built{}
		builds.bins[key] = b
	}
	n := len(builds.bins)
	builds.Unlock()
	b.once.Do(func() {
		builds.sources.Do(func() { builds.srcErr = readSources() })
		if builds.srcErr != nil {
			b.err = builds.srcErr
			return
		}
		dir, err := buildDir()
		if err != nil {
			b.err = err
			return
		}
		// One directory per build, so two builds of one package never
		// share a file name.
		sub := filepath.Join(dir, strconv.Itoa(n))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.err = err
			return
		}
		out := filepath.Join(sub, filepath.Base(pkg))
		if b.err = Compile(ctx, out, pkg, o); b.err == nil {
			b.path = out
		}
	})
	return b.path, b.err
}

func buildDir() (string, error) {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "camdtest-bin-")
		if err != nil {
			return "", err
		}
		// Searchable by all: some tests run the binary as another user
		// (nobody, to show a missing capability).
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", err
		}
		builds.dir = dir
	}
	return builds.dir, nil
}

// RemoveBuilds deletes the binaries Build made; call it from TestMain after
// m.Run.
func RemoveBuilds() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir = ""
		builds.bins = nil
	}
}

// readSources reads every Go source and module file of the module, and
// every file it may embed. The binary is built by a subprocess, so without
// this go test would not know the tests depend on the sources and would
// replay a cached pass after a change.
func readSources() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	// The kinds of file camd may embed: templates, styles, the OpenAPI
	// document, images. A change to one changes the binary too.
	embeddable := []string{".html", ".tmpl", ".gohtml", ".css", ".js", ".svg", ".yaml", ".yml", ".jpg", ".jpeg", ".png"}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while the walk ran: someone is editing
		}
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
			if _, err := os.ReadFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// moduleRoot is the nearest directory above the working directory (a
// test's package directory) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("camdtest: no go.mod above the working directory")
		}
		dir = parent
	}
}
