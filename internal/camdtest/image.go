package camdtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The repository's Dockerfile built with podman, for the container test
// (e2e) and the image size the bench measures, without an image registry.

// PodmanRuntime and PodmanUlimits are the podman flags that work on these
// machines: runc, and explicit ulimits (the default runtime, crun, fails
// here on cgroups and rlimits). PodmanRuntime goes before every podman
// command, PodmanUlimits after build and run.
var (
	PodmanRuntime = []string{"--runtime", "runc"}
	PodmanUlimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
)

// BuilderImageName is the Go builder image BuilderImage makes.
const BuilderImageName = "localhost/gobuilder:1.26"

// Podman runs podman with PodmanRuntime and args and returns its trimmed
// output, stdout and stderr together.
func Podman(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "podman", append(append([]string(nil), PodmanRuntime...), args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// BuilderImage returns BuilderImageName, first assembling it from this
// machine's own toolchain when podman does not have it, since no image
// registry is reachable: a static busybox (package busybox-static), GOROOT
// and the CA bundle, imported with podman import. It is kept for the next
// caller.
func BuilderImage(ctx context.Context) (string, error) {
	if _, err := Podman(ctx, "image", "exists", BuilderImageName); err == nil {
		return BuilderImageName, nil
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("builder image: busybox not found (apt-get install busybox-static): %w", err)
	}
	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("builder image: go env GOROOT: %w", err)
	}
	root, err := os.MkdirTemp("", "camdtest-builder-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	for _, d := range []string{"bin", "tmp", "etc/ssl/certs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "cp", busybox, filepath.Join(root, "bin", "busybox")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("builder image: copy busybox: %v %s", err, out)
	}
	for _, app := range []string{"sh", "mkdir", "ls", "cat", "env"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", app)); err != nil {
			return "", err
		}
	}
	gr := strings.TrimSpace(string(goroot))
	// One tar stream: the small root, then GOROOT and the CA bundle from /.
	tar := exec.CommandContext(ctx, "tar", "-c", "-C", root, ".", "-C", "/", strings.TrimPrefix(gr, "/"), "etc/ssl/certs/ca-certificates.crt")
	imp := exec.CommandContext(ctx, "podman", "import", "--change", "ENV PATH="+gr+"/bin:/bin", "-", BuilderImageName)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return "", err
	}
	imp.Stdin = pipe
	var out bytes.Buffer
	imp.Stdout, imp.Stderr = &out, &out
	if err := tar.Start(); err != nil {
		return "", fmt.Errorf("builder image: tar: %w", err)
	}
	if err := imp.Run(); err != nil {
		tar.Wait()
		return "", fmt.Errorf("builder image: podman import: %v\n%s", err, out.String())
	}
	if err := tar.Wait(); err != nil {
		return "", fmt.Errorf("builder image: tar: %w", err)
	}
	return BuilderImageName, nil
}

// BuildImage builds the Dockerfile in the module root root as tag, with
// the builder image from BuilderImage and VERSION version. Docker format:
// the OCI format has no HEALTHCHECK.
func BuildImage(ctx context.Context, root, tag, version string) error {
	builder, err := BuilderImage(ctx)
	if err != nil {
		return err
	}
	args := append(append([]string{"build"}, PodmanUlimits...),
		"--format", "docker", "--build-arg", "GO_IMAGE="+builder, "--build-arg", "VERSION="+version, "-t", tag, root)
	if out, err := Podman(ctx, args...); err != nil {
		return fmt.Errorf("podman build: %v\n%s", err, out)
	}
	return nil
}

// ImageSize is the size podman reports for image, in bytes.
func ImageSize(ctx context.Context, image string) (int64, error) {
	out, err := Podman(ctx, "image", "inspect", "--format", "{{.Size}}", image)
	if err != nil {
		return 0, fmt.Errorf("podman image inspect: %v\n%s", err, out)
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("image size %q: %w", out, err)
	}
	return n, nil
}
