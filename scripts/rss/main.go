// Command rss measures camd's idle resident memory for scripts/budgets.sh:
//
//	go run ./scripts/rss CAMD_BINARY DATA_DIR
//
// It starts the binary on 127.0.0.1 with --clock system, waits until
// /healthz answers 200 and stops it, so the data directory exists and the
// next start skips the initial password hash, which would inflate the
// figure. It then starts it again, waits for /healthz, lets it settle for a
// second, reads VmRSS from /proc/PID/status and stops it with SIGTERM. It
// prints VmRSS in KiB on stdout. It is a Go program rather than shell so it
// needs neither curl nor a particular shell's /dev/tcp.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rss CAMD_BINARY DATA_DIR")
		os.Exit(2)
	}
	kib, err := measure(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
	fmt.Println(kib)
}

func measure(bin, dataDir string) (int, error) {
	first, err := startCamd(bin, dataDir)
	if err != nil {
		return 0, fmt.Errorf("first start: %w", err)
	}
	if err := first.stop(); err != nil {
		return 0, fmt.Errorf("first start: %w", err)
	}
	s, err := startCamd(bin, dataDir)
	if err != nil {
		return 0, fmt.Errorf("second start: %w", err)
	}
	defer s.cmd.Process.Kill() // on early return; a no-op once stopped
	// Let start-up garbage settle the way it would on an idle cam.
	time.Sleep(time.Second)
	kib, err := vmRSS(s.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	if err := s.stop(); err != nil {
		return 0, err
	}
	return kib, nil
}

type server struct {
	cmd  *exec.Cmd
	done chan error // receives cmd.Wait's result once stderr is drained

	mu   sync.Mutex
	logs strings.Builder // stderr without the password line, for errors
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// startCamd starts camd and returns once /healthz has answered 200.
func startCamd(bin, dataDir string) (*server, error) {
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--clock", "system", "--log-format", "json")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		// The password line is read but never kept or printed.
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "initial owner password: ") {
				continue
			}
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		s.done <- cmd.Wait()
	}()

	deadline := time.After(30 * time.Second)
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/healthz"
	case err := <-s.done:
		return nil, fmt.Errorf("camd exited before listening: %v\n%s", err, s.log())
	case <-deadline:
		cmd.Process.Kill()
		return nil, fmt.Errorf("camd did not listen within 30s\n%s", s.log())
	}
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		if res, err := c.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("camd exited before /healthz answered: %v\n%s", err, s.log())
		case <-deadline:
			cmd.Process.Kill()
			return nil, fmt.Errorf("/healthz did not answer 200 within 30s\n%s", s.log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and wants a clean exit, as a supervisor would.
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("camd after SIGTERM: %v\n%s", err, s.log())
		}
		return nil
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("camd did not exit within 15s of SIGTERM")
	}
}

// vmRSS reads the resident set size in KiB, as the kernel reports it.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
