package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"camd/config"
	"camd/platform/clients"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/secret"
	"camd/token"
)

// ClientUsage documents `camd client`.
const ClientUsage = `Usage:
  camd client add NAME [--scope ack]... [flags]   create a client; prints its token once on stdout
  camd client list [flags]                        list clients (never tokens)
  camd client revoke NAME [flags]                 delete a client; its tokens stop working at once

They work on the data directory, with or without a running server; a running
server sees the change on its next request. Flags are those of camd serve
(--data-dir, --secret-file, ...).
`

// ClientMain runs `camd client ...` with args after "client". It returns the
// exit code: 0, 1 for a failure, 2 for a usage error.
func ClientMain(args []string, env config.Env, sys config.System, stdout, stderr io.Writer, buildTime string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, ClientUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb, rest := args[0], args[1:]
	var names, scopes, flags []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--scope" || a == "-scope":
			if i+1 == len(rest) {
				fmt.Fprintln(stderr, "camd client: --scope needs a value")
				return 2
			}
			i++
			scopes = append(scopes, rest[i])
		case strings.HasPrefix(a, "--scope=") || strings.HasPrefix(a, "-scope="):
			scopes = append(scopes, a[strings.Index(a, "=")+1:])
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			// A flag's value may follow as its own argument.
			if !strings.Contains(a, "=") && i+1 < len(rest) && !strings.HasPrefix(rest[i+1], "-") && a != "--set-system-clock" {
				i++
				flags = append(flags, rest[i])
			}
		default:
			names = append(names, a)
		}
	}
	cfg, err := config.Parse("client", flags, env, sys, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "camd client: %v\n", err)
		return 2
	}
	wantNames := map[string]int{"add": 1, "list": 0, "revoke": 1}
	n, ok := wantNames[verb]
	if !ok || len(names) != n || (verb != "add" && len(scopes) > 0) {
		fmt.Fprint(stderr, ClientUsage)
		return 2
	}
	dir, err := datadir.Open(cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "camd client: %v\n", err)
		return 1
	}
	store, err := clients.Open(dir)
	if err == nil {
		switch verb {
		case "add":
			err = clientAdd(cfg, dir, store, names[0], scopes, stdout, stderr, buildTime)
		case "list":
			err = clientList(store, stdout)
		case "revoke":
			if err = store.Remove(names[0]); err == nil {
				fmt.Fprintf(stderr, "revoked client %s\n", names[0])
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "camd client %s: %v\n", verb, err)
		return 1
	}
	return 0
}

func clientAdd(cfg config.Config, dir datadir.Dir, store *clients.Store, name string, scopes []string, stdout, stderr io.Writer, buildTime string) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	now := func() time.Time { return offlineNow(dir, buildTime) }
	var key []byte
	var err error
	if cfg.SecretFile != "" {
		key, err = secret.LoadExternal(cfg.SecretFile, log)
	} else {
		// Before first boot this makes the secret the server will use.
		key, err = secret.LoadOrCreate(dir, log, now)
	}
	if err != nil {
		return err
	}
	tokens, err := token.NewAuthority(key, cfg.TokenTTL, clock.Func(now))
	if err != nil {
		return err
	}
	c, err := store.Add(name, scopes, now())
	if err != nil {
		return err
	}
	tok, err := tokens.IssueClient(c.Name, c.ID, c.Scopes)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "created client %s with scopes %s; its token is shown once:\n", c.Name, strings.Join(c.Scopes, ","))
	fmt.Fprintln(stdout, tok)
	return nil
}

func clientList(store *clients.Store, stdout io.Writer) error {
	list, err := store.List()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCOPES\tCREATED\tLAST USED\tFROM")
	for _, c := range list {
		used, from := "never", "-"
		if c.LastUsed != nil {
			used, from = c.LastUsed.At.Format(time.RFC3339), c.LastUsed.Addr
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, strings.Join(c.Scopes, ","), c.CreatedAt.Format(time.RFC3339), used, from)
	}
	return w.Flush()
}
