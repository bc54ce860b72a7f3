package ntpclock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// capSysTime is CAP_SYS_TIME's bit in the capability sets (linux/capability.h).
const capSysTime = 25

// canSetSystemClock checks for CAP_SYS_TIME in the effective set, so that
// --set-system-clock fails at start with a clear message rather than at the
// first sync.
func canSetSystemClock() error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return fmt.Errorf("--set-system-clock: cannot read capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hex, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("--set-system-clock: parse CapEff: %w", err)
		}
		if caps&(1<<capSysTime) == 0 {
			return errors.New("--set-system-clock needs CAP_SYS_TIME: run camd as root, or grant it (systemd AmbientCapabilities=CAP_SYS_TIME, or setcap cap_sys_time+ep camd)")
		}
		return nil
	}
	return errors.New("--set-system-clock: no CapEff line in /proc/self/status")
}

// setSystemClock sets the OS wall clock.
func setSystemClock(t time.Time) error {
	tv := syscall.NsecToTimeval(t.UnixNano())
	if err := syscall.Settimeofday(&tv); err != nil {
		return fmt.Errorf("set system clock: %w", err)
	}
	return nil
}
