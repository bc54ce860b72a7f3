// Package chronytest runs a real NTP server, Debian's chronyd, on a loopback
// port for tests. chronyd serves its own local clock at stratum 8 and is
// started with -x, so it never touches the system clock.
package chronytest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// Server is a running chronyd.
type Server struct {
	Addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// FreePort returns a UDP port on 127.0.0.1 that nothing listens on now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Start runs chronyd on a free port until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartOn(tb, FreePort(tb))
}

// StartOn runs chronyd on port and waits until it answers NTP queries. CI
// installs chrony (.ci/run); elsewhere a missing chronyd skips the test.
func StartOn(tb testing.TB, port int) *Server {
	tb.Helper()
	chronyd, err := exec.LookPath("chronyd")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("chronyd not found: .ci/run must install chrony")
		}
		tb.Skip("chronyd not found: apt-get install chrony")
	}
	dir := tb.TempDir()
	conf := fmt.Sprintf(`port %d
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 8
cmdport 0
driftfile %s
pidfile %s
`, port, filepath.Join(dir, "chrony.drift"), filepath.Join(dir, "chronyd.pid"))
	confPath := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), log: &bytes.Buffer{}}
	// -d: stay in the foreground, so the test owns the process and its pid;
	// -x: never touch the system clock.
	s.cmd = exec.Command(chronyd, "-f", confPath, "-x", "-d")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start chronyd: %v", err)
	}
	tb.Cleanup(s.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := ntp.QueryWithOptions(s.Addr, ntp.QueryOptions{Timeout: 300 * time.Millisecond})
		if err == nil && r.Validate() == nil {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("chronyd on %s never answered: %v %v\n%s", s.Addr, err, r, s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends chronyd.
func (s *Server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
}
