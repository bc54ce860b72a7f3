// Package config turns camd's command-line flags and CAMD_* environment
// variables into one validated Config. Flags win over variables.
package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"camd/token"
)

// Config is everything camd is told from outside.
type Config struct {
	Listen     string        // address to listen on, host:port
	DataDir    string        // where secret.bin, the password hash and the last ack live
	SecretFile string        // secret provided from outside; empty means DataDir/secret.bin
	TokenTTL   time.Duration // lifetime of login tokens
	LogFormat  string        // "text" or "json"

	ClockMode      string        // "auto", "ntp" or "system": when time is trusted
	NTPServers     string        // comma list of host or host:port; see Servers
	NTPInterval    time.Duration // between NTP syncs once synced
	SetSystemClock bool          // also set the OS clock after each sync
	// ClockMaxAhead is how far past the build time one NTP server, or the
	// RTC in auto mode, is believed before the clock is trusted; farther
	// takes two servers that agree. Zero means DefaultClockMaxAhead.
	ClockMaxAhead time.Duration

	TrustedProxies string // comma list of CIDRs whose X-Forwarded-For is believed
	// LockoutIPv6Prefix is how many leading bits of an IPv6 address one
	// lockout entry covers: a host commonly holds a whole /64. Zero
	// means DefaultLockoutIPv6Prefix.
	LockoutIPv6Prefix int

	// MaxConns caps the connections held at once; 0 derives it from the
	// open-files limit (connlimit.DefaultMax). MaxConnsPerAddr caps one
	// client address's; 0 means no per-address cap.
	MaxConns        int
	MaxConnsPerAddr int

	MemoryLimit string // Go soft memory limit, such as "24MiB"; "off" for none

	TLS     string // "off", "auto" (self-signed, kept in DataDir) or "files"
	TLSCert string // PEM certificate for TLS "files"
	TLSKey  string // PEM key for TLS "files"

	// Modules holds the values of the flags modules declare (Flag), by
	// flag name, defaults filled in.
	Modules Values
}

// Flag is a flag a module declares for its own settings. Its value reaches
// the module as a string in Values, which the module checks itself.
type Flag struct {
	Name    string // without dashes, such as "snapshot-file"
	Env     string // the variable that can also set it, such as "CAMD_SNAPSHOT_FILE"
	Usage   string
	Default string
	Bool    bool // a switch: --name alone means true
}

// ScopeFlag is camd client add's own flag (--scope), which it adds to the
// flag set NewFlagSet returns.
const ScopeFlag = "scope"

// Check refuses a module flag that cannot sit beside camd's own: a name the
// flag package refuses, the name or variable of one of camd's flags,
// --scope, and -h or --help, which print the usage. Clashes between modules
// are the registry's to find.
func (f Flag) Check() error {
	if f.Name == "" || strings.HasPrefix(f.Name, "-") || strings.Contains(f.Name, "=") {
		return fmt.Errorf("flag name %q: want a name without leading dashes or '='", f.Name)
	}
	switch f.Name {
	case ScopeFlag, "h", "help":
		return fmt.Errorf("flag --%s is reserved by camd", f.Name)
	}
	_, _, own := NewFlagSet("", nil)
	for _, s := range own {
		if f.Name == s.name {
			return fmt.Errorf("flag --%s is one of camd's own", f.Name)
		}
		if f.Env != "" && f.Env == s.env {
			return fmt.Errorf("flag --%s: variable %s sets camd's --%s", f.Name, f.Env, s.name)
		}
	}
	return nil
}

// Values are flag values by name.
type Values map[string]string

// String is the value of the flag name.
func (v Values) String(name string) string { return v[name] }

// Bool is the value of the switch name.
func (v Values) Bool(name string) (bool, error) {
	b, err := strconv.ParseBool(v[name])
	if err != nil {
		return false, fmt.Errorf("--%s: %q is not true or false", name, v[name])
	}
	return b, nil
}

// Only returns the values of flags, a module's own, with the default of
// each that v does not set (a Config made without Parse, as in tests).
func (v Values) Only(flags []Flag) Values {
	out := make(Values, len(flags))
	for _, f := range flags {
		val, ok := v[f.Name]
		if !ok {
			val = f.Default
		}
		out[f.Name] = val
	}
	return out
}

// moduleFlag is a module's flag in a flag.FlagSet: a string, or a switch.
type moduleFlag struct {
	values Values
	name   string
	bool   bool
}

func (f *moduleFlag) String() string {
	if f == nil || f.values == nil {
		return ""
	}
	return f.values[f.name]
}

func (f *moduleFlag) Set(v string) error {
	if f.bool {
		// Spelled as camd's own switches are: on/off and yes/no too.
		var b switchFlag
		if err := b.Set(v); err != nil {
			return err
		}
		v = strconv.FormatBool(bool(b))
	}
	f.values[f.name] = v
	return nil
}

func (f *moduleFlag) IsBoolFlag() bool { return f.bool }

// Proxies returns TrustedProxies parsed; a bare address is a /32 or /128.
// Validate has checked them.
func (c Config) Proxies() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range strings.Split(c.TrustedProxies, ",") {
		if n, err := parseCIDR(strings.TrimSpace(s)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func parseCIDR(s string) (*net.IPNet, error) {
	if ip := net.ParseIP(s); ip != nil {
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(s)
	return n, err
}

// Servers returns NTPServers as a list.
func (c Config) Servers() []string {
	var out []string
	for _, s := range strings.Split(c.NTPServers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Token lifetimes outside these bounds are refused: shorter is unusable,
// longer defeats the point of a short-lived login token.
const (
	MinTokenTTL = time.Minute
	MaxTokenTTL = 24 * time.Hour
)

// NTP intervals outside these bounds are refused: more often is abuse of
// public servers, less often lets the clock drift for days.
const (
	MinNTPInterval = time.Minute
	MaxNTPInterval = 24 * time.Hour
)

// DefaultClockMaxAhead is five years: a cam's usual life on one firmware.
// Past it a single NTP server needs a second that agrees (the default pool
// has four). Spans outside Min and Max are refused: shorter would refuse the
// honest time of a cam installed a while after its build, longer would let
// one lying server set the floor decades ahead.
const (
	DefaultClockMaxAhead = 5 * 365 * 24 * time.Hour
	MinClockMaxAhead     = 24 * time.Hour
	MaxClockMaxAhead     = 50 * 365 * 24 * time.Hour
)

// MinLockoutIPv6Prefix is the shortest IPv6 prefix the lockout may count as
// one client: shorter would let one attacker lock out a whole provider.
const MinLockoutIPv6Prefix = 32

// DefaultLockoutIPv6Prefix counts each /64 as one client.
const DefaultLockoutIPv6Prefix = 64

// LockoutPrefix is LockoutIPv6Prefix with its default filled in.
func (c Config) LockoutPrefix() int {
	if c.LockoutIPv6Prefix == 0 {
		return DefaultLockoutIPv6Prefix
	}
	return c.LockoutIPv6Prefix
}

// DefaultMaxConnsPerAddr is a browser's six connections ten times over, room
// for a benchmark's or a dashboard's 32 beside them, and few enough that one
// address holds a quarter of a cam's 256.
const DefaultMaxConnsPerAddr = 64

// MaxMaxConns bounds both connection caps: far above any cam's file limit.
const MaxMaxConns = 1 << 20

// DefaultMemoryLimit keeps the Go heap small on a cam that shares 64-128
// MiB with video encoding; camd's live heap is a few MiB, each password
// check adds 6 MiB.
const DefaultMemoryLimit = "24MiB"

// MemoryLimitBytes parses MemoryLimit: a number with an optional B, KiB,
// MiB or GiB suffix; 0 for "off".
func (c Config) MemoryLimitBytes() (int64, error) {
	v := strings.TrimSpace(c.MemoryLimit)
	if v == "" || v == "off" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	// n*mult must not overflow: 16GiB more than 2^64 bytes would wrap to
	// 16GiB, and 2^34 GiB to 0, which reads as "off".
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("--memory-limit %q (CAMD_MEMORY_LIMIT): want a size such as 24MiB, or off", c.MemoryLimit)
	}
	return n * mult, nil
}

// DefaultNTPServers is the public NTP pool.
const DefaultNTPServers = "0.pool.ntp.org,1.pool.ntp.org,2.pool.ntp.org,3.pool.ntp.org"

// Env looks up an environment variable; os.LookupEnv in production.
type Env func(key string) (string, bool)

// System describes the machine for choosing the default data directory;
// tests replace it.
type System struct {
	IsMountPoint func(path string) bool
	IsDir        func(path string) bool
}

// HostSystem is the real machine.
func HostSystem() System {
	return System{IsMountPoint: isMountPoint, IsDir: isDir}
}

// DefaultDataDir picks the data directory when none is configured: an SD card
// when one is mounted, else the cam's internal flash, else the working
// directory (a development machine or a container with a volume).
func DefaultDataDir(sys System) string {
	switch {
	case sys.IsMountPoint("/sdcard"):
		return "/sdcard/camd"
	case sys.IsDir("/flash"):
		return "/flash/camd"
	default:
		return "./camd-data"
	}
}

// FlagSpec describes one flag and the variable that can also set it.
type FlagSpec struct {
	name, env, usage string
}

// Parse reads the flags of subcommand cmd, camd's own and the modules'
// (modules), from args and the CAMD_* variables from env. It returns
// flag.ErrHelp after printing usage for -h/--help.
func Parse(cmd string, args []string, env Env, sys System, out io.Writer, modules ...Flag) (Config, error) {
	cfg, fs, specs := NewFlagSet(cmd, modules)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Usage(out, fs, specs)
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see camd --help)", fs.Arg(0))
	}
	return cfg.Finish(fs, specs, env, sys)
}

// NewFlagSet returns a flag set with every flag of camd and of modules,
// bound to the Config returned. A subcommand with arguments of its own (camd
// client add NAME) parses them with it, then calls Finish.
func NewFlagSet(cmd string, modules []Flag) (*Config, *flag.FlagSet, []FlagSpec) {
	cfg := &Config{Modules: Values{}}
	fs := flag.NewFlagSet("camd "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed by Usage
	specs := []FlagSpec{
		{"listen", "CAMD_LISTEN", "address to listen on, host:port"},
		{"data-dir", "CAMD_DATA_DIR", "data directory (default: /sdcard/camd when /sdcard is mounted, else /flash/camd when /flash exists, else ./camd-data)"},
		{"secret-file", "CAMD_SECRET_FILE", "use this 32-byte signing secret instead of DATA_DIR/secret.bin; it is never written"},
		{"token-ttl", "CAMD_TOKEN_TTL", fmt.Sprintf("lifetime of login tokens, %v to %v", MinTokenTTL, MaxTokenTTL)},
		{"log-format", "CAMD_LOG_FORMAT", "log format: text or json"},
		{"clock", "CAMD_CLOCK", "when time is trusted: auto (system clock if later than the build and last-known-good time, NTP once synced), ntp (only after an NTP sync) or system (no NTP traffic, for containers)"},
		{"ntp-servers", "CAMD_NTP_SERVERS", "NTP servers, a comma list of host or host:port"},
		{"ntp-interval", "CAMD_NTP_INTERVAL", fmt.Sprintf("time between NTP syncs once synced (with jitter), %v to %v", MinNTPInterval, MaxNTPInterval)},
		{"set-system-clock", "CAMD_SET_SYSTEM_CLOCK", "also set the OS clock after each NTP sync; needs root or CAP_SYS_TIME"},
		{"tls", "CAMD_TLS", "HTTPS: off, auto (a self-signed certificate made on first start and kept in the data directory; its SHA-256 fingerprint is logged for pinning) or files (--tls-cert and --tls-key; implied when both are given)"},
		{"tls-cert", "CAMD_TLS_CERT", "PEM certificate (chain) for --tls files"},
		{"tls-key", "CAMD_TLS_KEY", "PEM private key for --tls files"},
		{"memory-limit", "CAMD_MEMORY_LIMIT", "Go soft memory limit (runtime/debug.SetMemoryLimit), such as 24MiB, for cams with 64-128 MiB shared with video; off for none; GOMEMLIMIT, when set, wins"},
		{"trusted-proxies", "CAMD_TRUSTED_PROXIES", "comma list of CIDRs of reverse proxies whose X-Forwarded-For is believed (default: none; the TCP peer is the client)"},
		{"max-conns", "CAMD_MAX_CONNS", "connections held at once; past it the longest idle one is closed for a new one, or the new one refused; 0: the open-files limit less a quarter of it (at least 64) kept for files, at most 256"},
		{"max-conns-per-addr", "CAMD_MAX_CONNS_PER_ADDR", "connections one client address may hold (IPv6: one prefix of --lockout-ipv6-prefix bits); more are refused at once; trusted proxies are exempt; 0 for no cap"},
		{"lockout-ipv6-prefix", "CAMD_LOCKOUT_IPV6_PREFIX", fmt.Sprintf("password lockout counts IPv6 clients by this many leading address bits, %d to 128 (a host commonly holds a whole /64)", MinLockoutIPv6Prefix)},
		{"clock-max-ahead", "CAMD_CLOCK_MAX_AHEAD", fmt.Sprintf("before the clock is trusted, one NTP server (or the RTC in --clock auto) is believed at most this long after the build time; later takes two servers that agree; %v to %v", MinClockMaxAhead, MaxClockMaxAhead)},
	}
	fs.StringVar(&cfg.Listen, "listen", ":8080", specs[0].usage)
	fs.StringVar(&cfg.DataDir, "data-dir", "", specs[1].usage)
	fs.StringVar(&cfg.SecretFile, "secret-file", "", specs[2].usage)
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", token.DefaultTTL, specs[3].usage)
	fs.StringVar(&cfg.LogFormat, "log-format", "text", specs[4].usage)
	fs.StringVar(&cfg.ClockMode, "clock", "auto", specs[5].usage)
	fs.StringVar(&cfg.NTPServers, "ntp-servers", DefaultNTPServers, specs[6].usage)
	fs.DurationVar(&cfg.NTPInterval, "ntp-interval", time.Hour, specs[7].usage)
	fs.Var((*switchFlag)(&cfg.SetSystemClock), "set-system-clock", specs[8].usage)
	fs.StringVar(&cfg.TLS, "tls", "off", specs[9].usage)
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", specs[10].usage)
	fs.StringVar(&cfg.TLSKey, "tls-key", "", specs[11].usage)
	fs.StringVar(&cfg.MemoryLimit, "memory-limit", DefaultMemoryLimit, flagUsage(specs, "memory-limit"))
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", flagUsage(specs, "trusted-proxies"))
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, flagUsage(specs, "max-conns"))
	fs.IntVar(&cfg.MaxConnsPerAddr, "max-conns-per-addr", DefaultMaxConnsPerAddr, flagUsage(specs, "max-conns-per-addr"))
	fs.IntVar(&cfg.LockoutIPv6Prefix, "lockout-ipv6-prefix", DefaultLockoutIPv6Prefix, flagUsage(specs, "lockout-ipv6-prefix"))
	fs.DurationVar(&cfg.ClockMaxAhead, "clock-max-ahead", DefaultClockMaxAhead, flagUsage(specs, "clock-max-ahead"))
	for _, m := range modules {
		specs = append(specs, FlagSpec{m.Name, m.Env, m.Usage})
		cfg.Modules[m.Name] = m.Default
		fs.Var(&moduleFlag{values: cfg.Modules, name: m.Name, bool: m.Bool}, m.Name, m.Usage)
	}
	return cfg, fs, specs
}

// Finish completes a Config whose flags fs has parsed: variables from env
// fill in what the command line left unset, defaults that depend on the
// machine are filled in, and the whole is validated.
func (c *Config) Finish(fs *flag.FlagSet, specs []FlagSpec, env Env, sys System) (Config, error) {
	cfg := c
	// Variables fill in only what the command line left unset, so a flag
	// wins even over a variable that would not parse.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range specs {
		if v, ok := env(s.env); ok && !given[s.name] {
			if err := fs.Set(s.name, v); err != nil {
				return Config{}, fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
		}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir(sys)
	}
	if cfg.TLS == "off" && !given["tls"] && cfg.TLSCert != "" && cfg.TLSKey != "" {
		if _, ok := env("CAMD_TLS"); !ok {
			cfg.TLS = "files" // giving both files is asking for HTTPS
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return *cfg, nil
}

// flagUsage is the usage of the flag called name in specs: looked up by
// name, as flags added in different places would shift any index.
func flagUsage(specs []FlagSpec, name string) string {
	for _, s := range specs {
		if s.name == name {
			return s.usage
		}
	}
	return ""
}

// switchFlag is a boolean flag that also takes on/off and yes/no, as people
// write them in environment files.
type switchFlag bool

func (f *switchFlag) String() string {
	if f == nil {
		return "false"
	}
	return strconv.FormatBool(bool(*f))
}

func (f *switchFlag) Set(v string) error {
	switch strings.ToLower(v) {
	case "on", "yes":
		*f = true
		return nil
	case "off", "no":
		*f = false
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("want true or false (on/off, yes/no)")
	}
	*f = switchFlag(b)
	return nil
}

// IsBoolFlag lets the flag stand alone: --set-system-clock.
func (f *switchFlag) IsBoolFlag() bool { return true }

// Validate checks the values that flags and variables can get wrong.
func (c Config) Validate() error {
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		return fmt.Errorf("--listen %q (CAMD_LISTEN): want host:port, such as :8080 or 127.0.0.1:8080", c.Listen)
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		// Caught here, not by net.Listen after the data directory and the
		// initial password have been made.
		return fmt.Errorf("--listen %q (CAMD_LISTEN): port %q: want a number from 0 to 65535 or a service name such as http", c.Listen, port)
	}
	if c.DataDir == "" {
		return errors.New("--data-dir (CAMD_DATA_DIR) must not be empty")
	}
	if p := c.LockoutIPv6Prefix; p != 0 && (p < MinLockoutIPv6Prefix || p > 128) {
		return fmt.Errorf("--lockout-ipv6-prefix %d (CAMD_LOCKOUT_IPV6_PREFIX): must be between %d and 128", p, MinLockoutIPv6Prefix)
	}
	if c.TokenTTL < MinTokenTTL || c.TokenTTL > MaxTokenTTL {
		return fmt.Errorf("--token-ttl %v (CAMD_TOKEN_TTL): must be between %v and %v", c.TokenTTL, MinTokenTTL, MaxTokenTTL)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q (CAMD_LOG_FORMAT): want text or json", c.LogFormat)
	}
	switch c.ClockMode {
	case "auto", "ntp", "system":
	default:
		return fmt.Errorf("--clock %q (CAMD_CLOCK): want auto, ntp or system", c.ClockMode)
	}
	if c.ClockMode != "system" {
		servers := c.Servers()
		if len(servers) == 0 {
			return fmt.Errorf("--ntp-servers (CAMD_NTP_SERVERS) is empty: --clock %s needs at least one", c.ClockMode)
		}
		for _, s := range servers {
			if err := checkServer(s); err != nil {
				return fmt.Errorf("--ntp-servers (CAMD_NTP_SERVERS) %q: %w", s, err)
			}
		}
		if c.NTPInterval < MinNTPInterval || c.NTPInterval > MaxNTPInterval {
			return fmt.Errorf("--ntp-interval %v (CAMD_NTP_INTERVAL): must be between %v and %v", c.NTPInterval, MinNTPInterval, MaxNTPInterval)
		}
	} else if c.SetSystemClock {
		return errors.New("--set-system-clock (CAMD_SET_SYSTEM_CLOCK) needs NTP: it cannot be used with --clock system")
	}
	if d := c.ClockMaxAhead; d != 0 && (d < MinClockMaxAhead || d > MaxClockMaxAhead) {
		return fmt.Errorf("--clock-max-ahead %v (CAMD_CLOCK_MAX_AHEAD): must be between %v and %v", d, MinClockMaxAhead, MaxClockMaxAhead)
	}
	switch c.TLS {
	case "", "off", "auto":
		if c.TLSCert != "" || c.TLSKey != "" {
			return fmt.Errorf("--tls-cert and --tls-key need --tls files, not --tls %s (CAMD_TLS)", c.TLS)
		}
	case "files":
		if c.TLSCert == "" || c.TLSKey == "" {
			return errors.New("--tls files needs both --tls-cert (CAMD_TLS_CERT) and --tls-key (CAMD_TLS_KEY)")
		}
	default:
		return fmt.Errorf("--tls %q (CAMD_TLS): want off, auto or files", c.TLS)
	}
	if c.MaxConns < 0 || c.MaxConns > MaxMaxConns {
		return fmt.Errorf("--max-conns %d (CAMD_MAX_CONNS): want 0 (from the open-files limit) or 1 to %d", c.MaxConns, MaxMaxConns)
	}
	if c.MaxConnsPerAddr < 0 || c.MaxConnsPerAddr > MaxMaxConns {
		return fmt.Errorf("--max-conns-per-addr %d (CAMD_MAX_CONNS_PER_ADDR): want 0 (no cap) or 1 to %d", c.MaxConnsPerAddr, MaxMaxConns)
	}
	if n, err := c.MemoryLimitBytes(); err != nil {
		return err
	} else if n != 0 && n < 8<<20 {
		return fmt.Errorf("--memory-limit %s (CAMD_MEMORY_LIMIT): below 8MiB camd would spend its time collecting garbage", c.MemoryLimit)
	}
	if strings.TrimSpace(c.TrustedProxies) != "" {
		for _, s := range strings.Split(c.TrustedProxies, ",") {
			if _, err := parseCIDR(strings.TrimSpace(s)); err != nil {
				return fmt.Errorf("--trusted-proxies (CAMD_TRUSTED_PROXIES) %q: want a CIDR such as 10.0.0.0/8 or an address", strings.TrimSpace(s))
			}
		}
	}
	return nil
}

// checkServer accepts what the NTP client does: host, host:port, an IPv6
// address, or [IPv6]:port, with a port from 1 to 65535.
func checkServer(s string) error {
	if net.ParseIP(s) != nil {
		return nil
	}
	host, port := s, ""
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return errors.New("want host or host:port")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1 to 65535", port)
		}
	}
	// A space was refused and a tab or a NUL not: now no white space or
	// control character at all, which no host name holds.
	if host == "" || strings.ContainsAny(host, "/\\@?#") || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return errors.New("want host or host:port")
	}
	return nil
}

// Usage prints the commands, every flag with its variable and default.
func Usage(out io.Writer, fs *flag.FlagSet, specs []FlagSpec) {
	fmt.Fprint(out, `camd: the cam's authenticated HTTP API

Usage:
  camd [serve] [flags]   run the server (the default command)
  camd passwd [flags]    set the owner password: reads one line from stdin,
                         or prompts twice when stdin is a terminal
  camd client add NAME [--scope SCOPE]... | list | revoke NAME
                         manage client credentials (see camd client --help
                         for the scopes)
  camd healthcheck       exit 0 when the local server's /healthz answers 200
                         (for container HEALTHCHECKs; uses --listen and --tls)
  camd version           print the version
  camd --help            print this help

Flags (each can also be set by the environment variable shown; flags win):
`)
	for _, s := range specs {
		f := fs.Lookup(s.name)
		def := ""
		if f.DefValue != "" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(out, "  --%s  [%s]\n        %s%s\n", s.name, s.env, s.usage, def)
	}
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// isMountPoint reports whether path is a mount point, by /proc/self/mountinfo
// (field 5 is the mount point).
func isMountPoint(path string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == path {
			return true
		}
	}
	return false
}
