package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"camd/apierr"
	"camd/auth"
	"camd/config"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/ntpclock"
	"camd/platform/password"
)

// passwd sets the owner password in the data directory. On a terminal it
// prompts twice without echo; otherwise it reads one line, so provisioning
// scripts can pipe the password in. A running server uses the new password
// from its next check on.
func passwd(args []string, opts Options) int {
	cfg, code := parse("passwd", args, opts)
	if code >= 0 {
		return code
	}
	if err := setPassword(cfg, opts); err != nil {
		fmt.Fprintf(opts.Stderr, "camd passwd: %s\n", message(err))
		return exitFailure
	}
	return exitOK
}

func setPassword(cfg config.Config, opts Options) error {
	pw, err := readNewPassword(opts.Stdin, opts.Stderr)
	if err != nil {
		return err
	}
	// Checked before the data directory is touched, as the service checks
	// it again.
	if err := password.Validate(pw); err != nil {
		return err
	}
	svc, err := openAuth(cfg, opts)
	if err != nil {
		return err
	}
	if err := svc.SetPassword(pw); err != nil {
		return err
	}
	fmt.Fprintf(opts.Stderr, "owner password updated in %s\n", svc.PasswordPath())
	return nil
}

// openAuth opens the auth service on cfg's data directory for a command
// that runs beside, or without, the server. It makes no initial password:
// camd passwd is how a damaged password file is replaced.
func openAuth(cfg config.Config, opts Options) (*auth.Service, error) {
	dir, err := datadir.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// Warnings only (a damaged file moved aside, a secret file readable by
	// others): the command says itself what it did.
	log := slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return auth.Open(auth.Config{
		Dir: dir, SecretFile: cfg.SecretFile, TokenTTL: cfg.TokenTTL, Log: log,
		Clock:             clock.Func(func() time.Time { return offlineNow(dir, opts.BuildTime) }),
		Scopes:            opts.Registry.Scopes(),
		LockoutIPv6Prefix: cfg.LockoutPrefix(),
	})
}

// message is what a person is told of err: an *apierr.Error's message
// without its code, else the error.
func message(err error) string {
	if e, ok := apierr.As(err); ok {
		return e.Message
	}
	return err.Error()
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
