package main

import (
	"debug/buildinfo"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// cpuModel is the first "model name" of /proc/cpuinfo: figures from
// different machines are not comparable, so the table says which it was.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// camdBuild describes the binary under test: its Go version and the commit
// of root it was built from, and whether the tree had uncommitted changes,
// since camd may be edited while the bench runs. Git is asked directly
// because builds with -buildvcs=false (a common GOFLAGS) record no VCS
// information in the binary.
func camdBuild(bin, root string) string {
	goVersion := "an unknown Go"
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		goVersion = bi.GoVersion
	}
	rev, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "built with " + goVersion + ", commit unknown (no git)"
	}
	dirty := ""
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		dirty = " with uncommitted changes"
	}
	return fmt.Sprintf("built with %s from commit %s%s", goVersion, strings.TrimSpace(string(rev)), dirty)
}

// fsType returns the file system type that holds path, from /proc/mounts:
// a durable ack costs an fsync, which tmpfs makes free and an SD card slow.
func fsType(path string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "file system unknown"
	}
	path, _ = filepath.Abs(path)
	best, typ := "", "file system unknown"
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		inside := mnt == "/" || path == mnt || strings.HasPrefix(path, mnt+"/")
		if inside && len(mnt) >= len(best) {
			best, typ = mnt, f[2]
		}
	}
	return typ
}

// loadAverage is the 1-minute load average: on a shared machine, other
// work running beside the bench moves every figure, and this shows it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// benchPackages lists the packages under root whose tests have Go
// benchmarks, as ./dir patterns: the allocation figures live there, written
// separately, and the bench only points at them.
func benchPackages(root string) []string {
	var pkgs []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), "\nfunc Benchmark") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err == nil && !slices.Contains(pkgs, "./"+rel) {
			pkgs = append(pkgs, "./"+rel)
		}
		return nil
	})
	slices.Sort(pkgs)
	return pkgs
}
