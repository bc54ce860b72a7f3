package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"camd/config"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/ntpclock"
	"camd/platform/password"
)

// Passwd sets the owner password in cfg's data directory. On a terminal it
// prompts twice without echo; otherwise it reads one line, so provisioning
// scripts can pipe the password in. A running server uses the new password
// from its next check on.
func Passwd(cfg config.Config, in io.Reader, out io.Writer, buildTime string) error {
	pw, err := readNewPassword(in, out)
	if err != nil {
		return err
	}
	if err := password.Validate(pw); err != nil {
		return err
	}
	dir, err := datadir.Open(cfg.DataDir)
	if err != nil {
		return err
	}
	store := password.NewStore(dir, password.DefaultParams(), 1)
	if err := store.Set(pw, offlineNow(dir, buildTime)); err != nil {
		return err
	}
	fmt.Fprintf(out, "owner password updated in %s\n", store.Path())
	return nil
}

func readNewPassword(in io.Reader, out io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		first, err := prompt(f, out, "New owner password: ")
		if err != nil {
			return "", err
		}
		if err := password.Validate(first); err != nil {
			return "", err
		}
		second, err := prompt(f, out, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if first != second {
			return "", errors.New("the two passwords differ; nothing changed")
		}
		return first, nil
	}
	// One line; read a little past the limit so an over-long one is
	// reported as such rather than cut.
	line, err := bufio.NewReader(io.LimitReader(in, password.MaxLength+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin: pipe one line, such as: echo 'new password' | camd passwd")
	}
	return line, nil
}

func prompt(f *os.File, out io.Writer, label string) (string, error) {
	fmt.Fprint(out, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// offlineNow is the time for commands that run without the server's clock:
// the system clock, but never earlier than the build or the last time the
// server trusted its clock, because a cam may have booted at 1970.
func offlineNow(dir datadir.Dir, buildTime string) time.Time {
	now := time.Now()
	if floor := clock.BuildFloor(buildTime); floor.After(now) {
		now = floor
	}
	if good, err := ntpclock.LastKnownGood(dir); err == nil && good.After(now) {
		now = good
	}
	return now
}
