package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"camd/auth"
	"camd/config"
)

// clientUsage documents camd client; the scopes follow it.
const clientUsage = `Usage:
  camd client add NAME [--scope SCOPE]... [flags]   create a client; prints its token once on stdout
  camd client list [flags]                          list clients (never tokens)
  camd client revoke NAME [flags]                   delete a client; its tokens stop working at once

They work on the data directory, with or without a running server; a running
server sees the change on its next request. Flags may come before or after
NAME; they are those of camd serve (--data-dir, --secret-file, ...; see
camd --help).
`

// clientVerbs are the subcommands of camd client and how many positional
// arguments each takes.
var clientVerbs = map[string]int{"add": 1, "list": 0, "revoke": 1}

// client runs camd client VERB ... .
func client(args []string, opts Options) int {
	if len(args) == 0 {
		printClientUsage(opts.Stderr, opts.Registry.Scopes())
		return exitUsage
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "-h", "-help", "--help", "help":
		printClientUsage(opts.Stdout, opts.Registry.Scopes())
		return exitOK
	}
	nargs, ok := clientVerbs[verb]
	if !ok {
		fmt.Fprintf(opts.Stderr, "camd client: unknown command %q\n\n", verb)
		printClientUsage(opts.Stderr, opts.Registry.Scopes())
		return exitUsage
	}
	cfg, fs, specs := config.NewFlagSet("client "+verb, opts.Registry.Flags())
	var scopes scopeList
	if verb == "add" {
		fs.Var(&scopes, config.ScopeFlag, "a scope to grant (repeat for more); none: the default scopes")
	}
	names, err := parseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printClientUsage(opts.Stdout, opts.Registry.Scopes())
		return exitOK
	}
	if err == nil && len(names) != nargs {
		err = fmt.Errorf("%s takes %d argument(s), got %d: %q", verb, nargs, len(names), names)
	}
	if err != nil {
		fmt.Fprintf(opts.Stderr, "camd client %s: %v (see camd client --help)\n", verb, err)
		return exitUsage
	}
	conf, err := cfg.Finish(fs, specs, opts.Env, opts.System)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "camd client %s: %v\n", verb, err)
		return exitUsage
	}
	svc, err := openAuth(conf, opts)
	if err == nil {
		switch verb {
		case "add":
			err = clientAdd(svc, names[0], scopes, opts)
		case "list":
			err = clientList(svc, opts.Stdout)
		case "revoke":
			if err = svc.RevokeClient(names[0]); err == nil {
				fmt.Fprintf(opts.Stderr, "revoked client %s\n", names[0])
			}
		}
	}
	if err != nil {
		fmt.Fprintf(opts.Stderr, "camd client %s: %s\n", verb, message(err))
		return exitFailure
	}
	return exitOK
}

// parseInterleaved parses flags and positional arguments in any order.
// flag.FlagSet stops at the first argument that is not a flag, so each is
// taken as positional and parsing resumes after it; "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// scopeList is a repeatable --scope.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, ",") }

func (s *scopeList) Set(v string) error {
	if v == "" {
		return errors.New("empty scope")
	}
	*s = append(*s, v)
	return nil
}

func printClientUsage(w io.Writer, scopes []auth.Scope) {
	fmt.Fprint(w, clientUsage)
	fmt.Fprintln(w, "\nScopes (--scope; without it, a client gets those marked default):")
	if len(scopes) == 0 {
		fmt.Fprintln(w, "  none: this camd has no module that declares one")
		return
	}
	scopes = slices.Clone(scopes)
	slices.SortFunc(scopes, func(a, b auth.Scope) int { return strings.Compare(a.Name, b.Name) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, sc := range scopes {
		def := ""
		if sc.Default {
			def = " (default)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", sc.Name, sc.Description, def)
	}
	tw.Flush()
}

func clientAdd(svc *auth.Service, name string, scopes []string, opts Options) error {
	c, grant, err := svc.AddClient(name, scopes)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Stderr, "created client %s with scopes %s; its token is shown once:\n", c.Name, strings.Join(c.Scopes, ","))
	fmt.Fprintln(opts.Stdout, grant.Token)
	return nil
}

func clientList(svc *auth.Service, stdout io.Writer) error {
	list, err := svc.Clients()
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
