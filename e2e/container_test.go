package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"camd/internal/camdtest"
)

// podman runs a podman command (camdtest.Podman, with the runtime that works
// on these machines) and returns its trimmed output. Not under t.Context():
// cleanups run podman after it is canceled.
func podman(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return camdtest.Podman(context.Background(), args...)
}

func mustPodman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := podman(t, args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// container is one running camd container, published on 127.0.0.1.
type container struct {
	*proc
	name   string
	notify *camdtest.Notify
}

// runContainer starts the image with extra podman run arguments and waits
// until camd in it signals readiness: podman's --sdnotify=container hands
// the container a socket and forwards its READY=1 to camdtest's.
func runContainer(t *testing.T, image string, args ...string) *container {
	t.Helper()
	n, err := camdtest.ListenNotify()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	name := "camd-e2e-" + randHex(4)
	port := freePort(t)
	runArgs := append([]string{"run", "-d", "--sdnotify=container", "--name", name, "-p", "127.0.0.1:" + strconv.Itoa(port) + ":8080",
		"-e", "CAMD_CLOCK=system"}, camdtest.PodmanUlimits...)
	runArgs = append(append(runArgs, args...), image)
	if out, err := podmanNotify(n, runArgs...); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	t.Cleanup(func() { podman(t, "rm", "-f", "-t", "0", name) })
	c := &container{proc: &proc{t: t, URL: "http://127.0.0.1:" + strconv.Itoa(port)}, name: name, notify: n}
	c.waitReady()
	// conmon writes the logs apart from the READY it forwards: give the
	// line camd printed before READY a moment to land.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		logs, _ := podman(t, "logs", name)
		if c.Password = camdtest.PasswordIn(logs); c.Password != "" || time.Now().After(deadline) {
			break
		}
	}
	return c
}

// podmanNotify runs podman with NOTIFY_SOCKET set to n, which podman run
// and restart hand to the container.
func podmanNotify(n *camdtest.Notify, args ...string) (string, error) {
	cmd := exec.Command("podman", append(append([]string(nil), camdtest.PodmanRuntime...), args...)...)
	cmd.Env = append(os.Environ(), n.Env())
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// restart is podman restart, waiting for camd to be ready again.
func (c *container) restart() {
	c.t.Helper()
	if out, err := podmanNotify(c.notify, "restart", "-t", "10", c.name); err != nil {
		c.t.Fatalf("podman restart: %v\n%s", err, out)
	}
	c.waitReady()
}

// waitReady waits for the next READY=1 from the container.
func (c *container) waitReady() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.notify.Wait(ctx, nil); err != nil {
		logs, _ := podman(c.t, "logs", c.name)
		c.t.Fatalf("container %s never became ready: %v\n%s", c.name, err, camdtest.WithoutPassword(logs))
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func volume(t *testing.T) string {
	t.Helper()
	name := "camd-e2e-" + randHex(4)
	mustPodman(t, "volume", "create", name)
	t.Cleanup(func() { podman(t, "volume", "rm", "-f", name) })
	return name
}

// TestContainer builds the repository's Dockerfile with podman and runs the
// image as staging would.
func TestContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image")
	}
	needTool(t, "podman", "podman")
	needTool(t, "runc", "runc")
	// camdtest assembles the Go builder image from this machine's
	// toolchain and busybox, as no registry is reachable.
	if _, err := podman(t, "image", "exists", camdtest.BuilderImageName); err != nil {
		needTool(t, "busybox", "busybox-static")
	}
	image := "localhost/camd:e2e"
	if err := camdtest.BuildImage(t.Context(), "..", image, "e2e"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", image) })

	t.Run("flow, restart, non-root, graceful stop", func(t *testing.T) {
		vol := volume(t)
		c := runContainer(t, image, "-v", vol+":/data")
		if c.Password == "" {
			t.Fatal("no initial password in the container's logs")
		}
		tok := c.login(c.Password)
		if r := c.do("POST", "/api/ack", `{"count":6}`, bearer(tok)); r.Status != 200 {
			t.Fatalf("ack: %d %s", r.Status, r.Body)
		}
		if r := c.do("GET", "/admin", "", basicAuth("owner", c.Password)); r.Status != 200 || r.Body != "hi owner" {
			t.Errorf("admin: %d %q", r.Status, r.Body)
		}
		if out, err := podman(t, "healthcheck", "run", c.name); err != nil {
			t.Errorf("HEALTHCHECK (camd healthcheck): %v %s", err, out)
		}

		pid := mustPodman(t, "inspect", "-f", "{{.State.Pid}}", c.name)
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 && fields[0] == "Uid:" && fields[1] == "0" {
				t.Errorf("camd runs as root in the container: %s", line)
			}
		}

		c.restart()
		if r := c.do("GET", "/api/ack", "", bearer(tok)); r.Status != 200 || r.field(t, "count") != float64(6) {
			t.Errorf("after a restart the token or the ack is gone: %d %s", r.Status, r.Body)
		}

		started := time.Now()
		mustPodman(t, "stop", "-t", "2", c.name)
		took := time.Since(started)
		// podman kills after -t 2 s, which would show as exit code 137.
		if code := mustPodman(t, "inspect", "-f", "{{.State.ExitCode}}", c.name); code != "0" {
			t.Errorf("exit code after podman stop: %s, want 0 (graceful)", code)
		}
		t.Logf("podman stop took %v", took.Round(time.Millisecond))
		if logs, _ := podman(t, "logs", c.name); !strings.Contains(logs, "msg=stopped") {
			t.Errorf("no graceful stop in the logs:\n%s", logs)
		}
	})

	t.Run("read-only root file system", func(t *testing.T) {
		c := runContainer(t, image, "--read-only", "-v", volume(t)+":/data")
		c.login(c.Password)
	})

	t.Run("shared secret file", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		secret := filepath.Join(dir, "camd-secret")
		key := make([]byte, 32)
		rand.Read(key)
		// Readable by the container's unprivileged user; mounted read-only.
		if err := os.WriteFile(secret, key, 0o444); err != nil {
			t.Fatal(err)
		}
		mount := []string{"-v", secret + ":/run/camd-secret:ro", "-e", "CAMD_SECRET_FILE=/run/camd-secret"}
		a := runContainer(t, image, append(mount, "-v", volume(t)+":/data")...)
		b := runContainer(t, image, append(mount, "-v", volume(t)+":/data")...)
		tok := a.login(a.Password)
		if r := b.do("POST", "/api/ack", `{"count":1}`, bearer(tok)); r.Status != http.StatusOK {
			t.Errorf("token from one replica on the other: %d %s", r.Status, r.Body)
		}
		if got, _ := os.ReadFile(secret); !bytes.Equal(got, key) {
			t.Error("the shared secret was changed")
		}
	})

	// The image budget (docs/performance.md): a size, not a timing, so a test can hold it.
	n, err := camdtest.ImageSize(t.Context(), image)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image size: %.1f MiB", float64(n)/(1<<20))
	if n > 10<<20 {
		t.Errorf("image is %.1f MiB, over the 10 MiB budget", float64(n)/(1<<20))
	}
}
