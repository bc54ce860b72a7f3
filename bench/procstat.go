package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The server processes are measured from the outside, through /proc, so
// camd and the reference are measured the same way and neither needs to
// carry any instrumentation.

// cpuTicks returns the user+system CPU time pid has used, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(string(b))
}

// parseStatTicks reads utime (field 14) and stime (field 15) from the text
// of /proc/PID/stat (proc(5)). The command name, field 2, is in parentheses
// and may itself contain spaces and ')', so fields are counted from the last
// ')'.
func parseStatTicks(stat string) (uint64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("proc stat: no ')' after the command name")
	}
	// rest[0] is field 3 (state), so field n is rest[n-3].
	rest := strings.Fields(stat[end+1:])
	if len(rest) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(rest))
	}
	utime, err := strconv.ParseUint(rest[14-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(rest[15-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat: stime: %w", err)
	}
	return utime + stime, nil
}

// statusKiB returns a "kB" field of /proc/PID/status, such as VmRSS.
func statusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseKiB(string(b), field)
}

// smapsKiB returns "kB" fields of /proc/PID/smaps_rollup, the sums over
// every mapping, such as Rss and Anonymous.
func smapsKiB(pid int, fields ...string) ([]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(fields))
	for i, f := range fields {
		if out[i], err = parseKiB(string(b), f); err != nil {
			return nil, fmt.Errorf("smaps_rollup: %w", err)
		}
	}
	return out, nil
}

// parseKiB finds "FIELD:   1234 kB" in the text of /proc/PID/status or
// /proc/PID/smaps_rollup.
func parseKiB(text, field string) (int64, error) {
	for line := range strings.Lines(text) {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok {
			return 0, fmt.Errorf("%s is %q, want a kB figure", field, strings.TrimSpace(v))
		}
		return strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	}
	return 0, fmt.Errorf("no %s", field)
}

// clockTicks returns the kernel's CLK_TCK, the unit of /proc/PID/stat's CPU
// times, and where the figure came from. It is 100 on every Linux port Go
// supports, so that is the fallback when getconf is not installed.
func clockTicks(ctx context.Context) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n, "getconf CLK_TCK"
		}
	}
	return 100, "assumed, getconf unavailable"
}
