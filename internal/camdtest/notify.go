package camdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// maxSocketPath is the room in sockaddr_un.sun_path, less its final NUL.
const maxSocketPath = 107

// State is one sd_notify(3) datagram: its NAME=value assignments by name,
// such as "READY" -> "1" and "STATUS" -> "listening on 127.0.0.1:41234".
type State map[string]string

// ListenAddr returns the address in a STATUS of "listening on ADDR", as
// camd sends it with READY=1, or "" for any other status.
func (s State) ListenAddr() string {
	addr, ok := strings.CutPrefix(s["STATUS"], "listening on ")
	if !ok {
		return ""
	}
	return addr
}

// Notify is the supervisor's side of the systemd readiness protocol: a
// unixgram socket whose path goes into the child's NOTIFY_SOCKET. It is its
// own type so that a launch camdtest does not run itself (podman run
// --sdnotify=container, which forwards READY=1) can wait the same way.
type Notify struct {
	conn    *net.UnixConn
	dir     string
	path    string
	readies chan State // every READY=1 datagram, in order

	mu  sync.Mutex
	all []string // every datagram, as sent
}

// ListenNotify makes a socket in a new temporary directory with a short
// path: a socket path must fit in 107 bytes, which t.TempDir (named after
// the test) does not promise. Close removes both.
func ListenNotify() (*Notify, error) {
	dir, err := os.MkdirTemp("", "camdtest-")
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	path := filepath.Join(dir, "notify")
	if len(path) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("notify socket path %s is over %d bytes: set TMPDIR to a shorter directory", path, maxSocketPath)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	n := &Notify{conn: conn, dir: dir, path: path, readies: make(chan State, 16)}
	go n.read()
	return n, nil
}

// Path is the value for NOTIFY_SOCKET.
func (n *Notify) Path() string { return n.path }

// Env is NOTIFY_SOCKET=Path, for a child's environment.
func (n *Notify) Env() string { return "NOTIFY_SOCKET=" + n.path }

func (n *Notify) read() {
	defer close(n.readies)
	buf := make([]byte, 4096)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			return // closed
		}
		msg := string(buf[:k])
		n.mu.Lock()
		n.all = append(n.all, msg)
		n.mu.Unlock()
		st := parseState(msg)
		if st["READY"] == "1" {
			select {
			case n.readies <- st:
			default: // nobody waits for so many restarts
			}
		}
	}
}

func parseState(msg string) State {
	st := State{}
	for line := range strings.SplitSeq(msg, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			st[k] = v
		}
	}
	return st
}

// Received returns every datagram received so far, such as
// "READY=1\nSTATUS=listening on 127.0.0.1:41234" and "STOPPING=1".
func (n *Notify) Received() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.all...)
}

// ErrExited is what Wait returns when the child exits first.
var ErrExited = errors.New("exited before it was ready")

// Wait returns the next READY=1 not yet returned. It gives up when ctx
// ends or when exited (nil: never) is closed, with ErrExited.
func (n *Notify) Wait(ctx context.Context, exited <-chan struct{}) (State, error) {
	select {
	case st, ok := <-n.readies:
		if ok {
			return st, nil
		}
		// Closed: a Proc closes it as its child exits.
		select {
		case <-exited:
			return nil, ErrExited
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	case <-exited:
		// A READY sent just before the exit still counts.
		select {
		case st, ok := <-n.readies:
			if ok {
				return st, nil
			}
		default:
		}
		return nil, ErrExited
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Close stops listening and removes the socket's directory.
func (n *Notify) Close() error {
	err := n.conn.Close()
	os.RemoveAll(n.dir)
	return err
}
