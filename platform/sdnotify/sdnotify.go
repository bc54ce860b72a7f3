// Package sdnotify implements the sender's side of the systemd readiness
// protocol (sd_notify(3)): one datagram, such as "READY=1", to the unix
// socket named by $NOTIFY_SOCKET. systemd units of Type=notify, and camd's
// own test helper, wait for it instead of scraping a log line.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// EnvSocket names the socket a supervisor listens on.
const EnvSocket = "NOTIFY_SOCKET"

// Messages camd sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notify sends state to the socket in $NOTIFY_SOCKET. Without one (no
// supervisor asked) it does nothing and reports false.
func Notify(state string) (sent bool, err error) {
	addr := os.Getenv(EnvSocket)
	if addr == "" {
		return false, nil
	}
	// On Linux, Go maps a leading "@" to the abstract namespace, as
	// systemd spells it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return true, nil
}
