package e2e

// Defect 4 of issue 13: idle keep-alive connections must not exhaust camd.
// An attacker opens thousands of connections, makes one request on each and
// leaves them open; camd must keep serving a new client from another
// address, within a second, holding a bounded number of connections and of
// memory.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// camFileLimit is the open-files limit the flood test gives camd, as on a
// cam (and 4,096 is common too): below the flood's size, so that without a
// cap the flood takes every descriptor camd may have.
const camFileLimit = 1024

// setFileLimit sets the soft and hard RLIMIT_NOFILE of process pid, as
// prlimit(1) does. Lowering another process's limit needs no privilege when
// it runs as the same user.
func setFileLimit(t *testing.T, pid int, n uint64) {
	t.Helper()
	lim := syscall.Rlimit{Cur: n, Max: n}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_NOFILE,
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0)
	if errno != 0 {
		t.Fatalf("prlimit %d NOFILE %d: %v", pid, n, errno)
	}
}

// floodResult counts how the flood's connections fared on their one request.
type floodResult struct {
	held, refused, stalled int
	statuses               map[int]int
	conns                  []net.Conn // the ones still open
}

// idleFlood opens n connections to addr from the loopback sources srcs (in
// turn), makes one keep-alive GET /healthz on each and keeps every one that
// answered and stayed open. A connection that got no answer within wait is
// counted as stalled and closed.
func idleFlood(addr string, srcs []net.IP, n int, wait time.Duration) *floodResult {
	res := &floodResult{statuses: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	dials := make(chan struct{}, 256) // dials in progress at once
	for i := range n {
		wg.Go(func() {
			dials <- struct{}{}
			c, err := dialFrom(srcs[i%len(srcs)], addr, wait)
			<-dials
			if err != nil {
				mu.Lock()
				res.refused++
				mu.Unlock()
				return
			}
			c.SetDeadline(time.Now().Add(wait))
			_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			var r *http.Response
			if err == nil {
				if r, err = http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					_, err = io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if r != nil {
				res.statuses[r.StatusCode]++
			}
			switch {
			case err == nil && r.StatusCode == http.StatusOK && !r.Close:
				c.SetDeadline(time.Time{})
				res.held++
				res.conns = append(res.conns, c)
				return
			case err != nil && isTimeout(err):
				res.stalled++
			default:
				res.refused++
			}
			c.Close()
		})
	}
	wg.Wait()
	return res
}

func (r *floodResult) close() {
	for _, c := range r.conns {
		c.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// healthzFrom answers how long a fresh GET /healthz from src takes, or the
// error after timeout.
func healthzFrom(url string, src net.IP, timeout time.Duration) (time.Duration, error) {
	c := clientFrom(src.String())
	c.Timeout = timeout
	defer c.CloseIdleConnections() // a fresh connection each time, none left behind
	t0 := time.Now()
	res, err := c.Get(url + "/healthz")
	if err != nil {
		return time.Since(t0), err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return time.Since(t0), fmt.Errorf("status %d", res.StatusCode)
	}
	return time.Since(t0), nil
}

// TestIdleConnFlood: 2,000 idle keep-alive connections, from one address or
// from 64, against camd with a cam's open-files limit. A new client from
// another address gets /healthz within a second, camd holds no more
// connections than its caps allow (per address, and in total), and its RSS
// stays bounded. Under pressure the idle ones are closed quickly, so what
// camd holds shrinks within seconds.
func TestIdleConnFlood(t *testing.T) {
	const (
		flood = 2000
		// The defaults: --max-conns, 256 from any open-files limit of
		// 1,024 or more (camd reads its limit at start, before the test
		// lowers it), and --max-conns-per-addr. The test passes no flag,
		// so it runs unchanged against a camd without caps.
		maxConns   = 256
		perAddr    = 64
		fdHeadroom = 32 // camd's own files, listener and the probes
		// rssGrowth bounds what the flood may add to camd's RSS: 256
		// connections take about 6 MiB (buffers and goroutine stacks),
		// and 2,000 accepted and closed leave some garbage.
		rssGrowth = 10 << 10 // KiB
	)
	needFDs(t, flood+256)
	many := make([]net.IP, 64)
	for i := range many {
		many[i] = net.IPv4(127, 0, 1, byte(i+1))
	}
	for _, tc := range []struct {
		name string
		srcs []net.IP
		// held bounds the connections camd may hold right after the
		// flood; settled, a few seconds later, once the short idle
		// timeout under pressure applied.
		held, settled int
	}{
		{"one address", []net.IP{net.IPv4(127, 0, 0, 9)}, perAddr, perAddr},
		{"64 addresses", many, maxConns, maxConns * 3 / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, t.TempDir())
			pid := p.cmd.Process.Pid
			setFileLimit(t, pid, camFileLimit)
			addr := strings.TrimPrefix(p.URL, "http://")
			probe := net.IPv4(127, 0, 0, 10)
			if _, err := healthzFrom(p.URL, probe, 5*time.Second); err != nil {
				t.Fatalf("healthz before the flood: %v", err)
			}
			fds0 := countFDs(pid)
			rss0, _, err := procMem(pid)
			if err != nil {
				t.Fatal(err)
			}

			t0 := time.Now()
			res := idleFlood(addr, tc.srcs, flood, 2*time.Second)
			defer res.close()
			took := time.Since(t0)
			conns := countFDs(pid) - fds0
			rss, _, err := procMem(pid)
			if err != nil {
				t.Fatal(err)
			}
			lat, herr := healthzFrom(p.URL, probe, 10*time.Second)
			t.Logf("flood of %d from %d address(es) in %v: %d held open, %d refused, %d stalled; statuses %v",
				flood, len(tc.srcs), took.Round(time.Millisecond), res.held, res.refused, res.stalled, res.statuses)
			t.Logf("camd holds %d connections (descriptors beyond the %d before); RSS %s -> %s MiB; /healthz from %v: %v, err %v",
				conns, fds0, mib(rss0), mib(rss), probe, lat.Round(time.Millisecond), herr)

			if herr != nil || lat > time.Second {
				t.Errorf("/healthz from another address during the flood: %v after %v, want 200 within 1s", herr, lat.Round(time.Millisecond))
			}
			if conns > tc.held+fdHeadroom {
				t.Errorf("camd holds %d connections, want at most %d", conns, tc.held)
			}
			if rss-rss0 > rssGrowth {
				t.Errorf("the flood grew camd's RSS by %s MiB, want at most %s", mib(rss-rss0), mib(rssGrowth))
			}
			if res.stalled > 0 {
				t.Errorf("%d connections got no answer within 2s: camd must answer or close at once", res.stalled)
			}
			for code := range res.statuses {
				if code >= 500 && code != http.StatusServiceUnavailable {
					t.Errorf("%d answers with status %d", res.statuses[code], code)
				}
			}

			// The idle timeout is short near the cap: within a few
			// seconds camd drops below the pressure mark.
			deadline := time.Now().Add(5 * time.Second)
			for {
				conns = countFDs(pid) - fds0
				if conns <= tc.settled+fdHeadroom || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("after %v camd holds %d connections", time.Since(t0).Round(100*time.Millisecond), conns)
			if conns > tc.settled+fdHeadroom {
				t.Errorf("camd still holds %d idle connections 5s after the flood, want at most %d", conns, tc.settled)
			}
			if lat, err := healthzFrom(p.URL, probe, 10*time.Second); err != nil || lat > time.Second {
				t.Errorf("/healthz after the flood: %v after %v", err, lat.Round(time.Millisecond))
			}
		})
	}
}
