package config_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"camd/config"
)

// envOf is a fake environment: exactly the variables in m are set.
func envOf(m map[string]string) config.Env {
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok
	}
}

// fakeSystem mounts the paths in mounts and has the directories in dirs.
func fakeSystem(mounts, dirs []string) config.System {
	has := func(list []string) func(string) bool {
		return func(p string) bool {
			for _, l := range list {
				if l == p {
					return true
				}
			}
			return false
		}
	}
	return config.System{IsMountPoint: has(mounts), IsDir: has(dirs)}
}

// ackFlag is a module's flag (the ack module's, as it declares it): Parse
// handles module flags as its own, from the command line and the
// environment, with the spellings camd's switches take.
var ackFlag = config.Flag{Name: "ack-group-commit", Env: "CAMD_ACK_GROUP_COMMIT", Default: "true", Bool: true}

var (
	bareSystem = fakeSystem(nil, nil)
	defaults   = config.Config{Listen: ":8080", DataDir: "./camd-data", TokenTTL: time.Hour, LogFormat: "text", LockoutIPv6Prefix: 64,
		ClockMode: "auto", NTPServers: config.DefaultNTPServers, NTPInterval: time.Hour, TLS: "off",
		Modules: config.Values{"ack-group-commit": "true"}, MemoryLimit: config.DefaultMemoryLimit, MaxConnsPerAddr: config.DefaultMaxConnsPerAddr,
		ClockMaxAhead: config.DefaultClockMaxAhead}
)

func TestParse(t *testing.T) {
	allEnv := map[string]string{
		"CAMD_LISTEN":              "127.0.0.1:9000",
		"CAMD_DATA_DIR":            "/var/lib/camd",
		"CAMD_SECRET_FILE":         "/run/secrets/camd",
		"CAMD_TOKEN_TTL":           "30m",
		"CAMD_LOG_FORMAT":          "json",
		"CAMD_CLOCK":               "ntp",
		"CAMD_NTP_SERVERS":         "127.0.0.1:11123, ntp.example:123",
		"CAMD_NTP_INTERVAL":        "30m",
		"CAMD_SET_SYSTEM_CLOCK":    "yes",
		"CAMD_TLS":                 "files",
		"CAMD_TLS_CERT":            "/etc/camd/tls.crt",
		"CAMD_TLS_KEY":             "/etc/camd/tls.key",
		"CAMD_TRUSTED_PROXIES":     "10.0.0.0/8,192.0.2.7",
		"CAMD_ACK_GROUP_COMMIT":    "off",
		"CAMD_MEMORY_LIMIT":        "48MiB",
		"CAMD_LOCKOUT_IPV6_PREFIX": "56",
		"CAMD_CLOCK_MAX_AHEAD":     "87600h",
		"CAMD_MAX_CONNS":           "200",
		"CAMD_MAX_CONNS_PER_ADDR":  "8",
	}
	fromAllEnv := config.Config{Listen: "127.0.0.1:9000", DataDir: "/var/lib/camd", SecretFile: "/run/secrets/camd", TokenTTL: 30 * time.Minute, LogFormat: "json",
		ClockMode: "ntp", NTPServers: "127.0.0.1:11123, ntp.example:123", NTPInterval: 30 * time.Minute, SetSystemClock: true,
		TLS: "files", TLSCert: "/etc/camd/tls.crt", TLSKey: "/etc/camd/tls.key", TrustedProxies: "10.0.0.0/8,192.0.2.7",
		Modules: config.Values{"ack-group-commit": "false"}, MemoryLimit: "48MiB", LockoutIPv6Prefix: 56, ClockMaxAhead: 87600 * time.Hour,
		MaxConns: 200, MaxConnsPerAddr: 8}
	allFlags := []string{"--listen=[::1]:7000", "--data-dir", "/data", "-secret-file=/s.bin", "--token-ttl", "2h", "--log-format=text",
		"--clock=system", "--ntp-servers=[::1]:123", "--ntp-interval=2h", "--set-system-clock=false",
		"--tls=auto", "--tls-cert=", "--tls-key=", "--trusted-proxies=fd00::/8", "--ack-group-commit=true", "--memory-limit=off", "--lockout-ipv6-prefix=128",
		"--clock-max-ahead=720h",
		"--max-conns=1000", "--max-conns-per-addr=0"}
	fromAllFlags := config.Config{Listen: "[::1]:7000", DataDir: "/data", SecretFile: "/s.bin", TokenTTL: 2 * time.Hour, LogFormat: "text",
		ClockMode: "system", NTPServers: "[::1]:123", NTPInterval: 2 * time.Hour, TLS: "auto", TrustedProxies: "fd00::/8",
		Modules: config.Values{"ack-group-commit": "true"}, MemoryLimit: "off", LockoutIPv6Prefix: 128, ClockMaxAhead: 720 * time.Hour,
		MaxConns: 1000}

	with := func(f func(c *config.Config)) config.Config {
		c := defaults
		f(&c)
		return c
	}

	tests := []struct {
		name string
		args []string
		env  map[string]string
		sys  config.System
		want config.Config
	}{
		{name: "defaults", sys: bareSystem, want: defaults},
		{
			name: "sdcard mounted",
			sys:  fakeSystem([]string{"/sdcard"}, []string{"/sdcard"}),
			want: with(func(c *config.Config) { c.DataDir = "/sdcard/camd" }),
		},
		{
			name: "sdcard mounted wins over flash",
			sys:  fakeSystem([]string{"/sdcard", "/flash"}, []string{"/sdcard", "/flash"}),
			want: with(func(c *config.Config) { c.DataDir = "/sdcard/camd" }),
		},
		{
			name: "flash exists",
			sys:  fakeSystem(nil, []string{"/flash"}),
			want: with(func(c *config.Config) { c.DataDir = "/flash/camd" }),
		},
		{
			name: "sdcard directory without a card",
			sys:  fakeSystem(nil, []string{"/sdcard", "/flash"}),
			want: with(func(c *config.Config) { c.DataDir = "/flash/camd" }),
		},
		{
			name: "neither",
			sys:  fakeSystem([]string{"/mnt"}, []string{"/mnt", "/tmp"}),
			want: defaults,
		},
		{name: "CAMD_LISTEN", env: map[string]string{"CAMD_LISTEN": "0.0.0.0:80"}, sys: bareSystem, want: with(func(c *config.Config) { c.Listen = "0.0.0.0:80" })},
		{name: "CAMD_DATA_DIR", env: map[string]string{"CAMD_DATA_DIR": "/srv/camd"}, sys: fakeSystem([]string{"/sdcard"}, nil), want: with(func(c *config.Config) { c.DataDir = "/srv/camd" })},
		{name: "CAMD_SECRET_FILE", env: map[string]string{"CAMD_SECRET_FILE": "/k"}, sys: bareSystem, want: with(func(c *config.Config) { c.SecretFile = "/k" })},
		{name: "CAMD_TOKEN_TTL", env: map[string]string{"CAMD_TOKEN_TTL": "90m"}, sys: bareSystem, want: with(func(c *config.Config) { c.TokenTTL = 90 * time.Minute })},
		{name: "CAMD_LOG_FORMAT", env: map[string]string{"CAMD_LOG_FORMAT": "json"}, sys: bareSystem, want: with(func(c *config.Config) { c.LogFormat = "json" })},
		{name: "all variables", env: allEnv, sys: bareSystem, want: fromAllEnv},
		{name: "empty CAMD_DATA_DIR means the default", env: map[string]string{"CAMD_DATA_DIR": ""}, sys: fakeSystem(nil, []string{"/flash"}), want: with(func(c *config.Config) { c.DataDir = "/flash/camd" })},
		{name: "other variables ignored", env: map[string]string{"LISTEN": "nonsense", "camd_listen": "nonsense", "CAMD_LISTEN_": "nonsense", "CAMD_TTL": "x"}, sys: bareSystem, want: defaults},
		{name: "all flags", args: allFlags, sys: bareSystem, want: fromAllFlags},
		{name: "flags win over variables", args: allFlags, env: allEnv, sys: bareSystem, want: fromAllFlags},
		{
			name: "one flag over its variable, others from variables",
			args: []string{"-token-ttl=5m"},
			env:  allEnv,
			sys:  bareSystem,
			want: with(func(c *config.Config) { *c = fromAllEnv; c.TokenTTL = 5 * time.Minute }),
		},
		{name: "ttl at the minimum", args: []string{"--token-ttl=1m"}, sys: bareSystem, want: with(func(c *config.Config) { c.TokenTTL = time.Minute })},
		{name: "ttl at the maximum", args: []string{"--token-ttl=24h"}, sys: bareSystem, want: with(func(c *config.Config) { c.TokenTTL = 24 * time.Hour })},
		{name: "flags end at --", args: []string{"--listen=:1", "--"}, sys: bareSystem, want: with(func(c *config.Config) { c.Listen = ":1" })},
		{name: "cert and key imply tls files", args: []string{"--tls-cert=/c", "--tls-key=/k"}, sys: bareSystem, want: with(func(c *config.Config) { c.TLS = "files"; c.TLSCert = "/c"; c.TLSKey = "/k" })},
		{name: "flag wins over a variable that would not parse", args: []string{"--token-ttl=5m"}, env: map[string]string{"CAMD_TOKEN_TTL": "bogus"}, sys: bareSystem, want: with(func(c *config.Config) { c.TokenTTL = 5 * time.Minute })},
		{name: "flag wins over an invalid variable", args: []string{"--log-format=json"}, env: map[string]string{"CAMD_LOG_FORMAT": "xml"}, sys: bareSystem, want: with(func(c *config.Config) { c.LogFormat = "json" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := config.Parse("serve", tt.args, envOf(tt.env), tt.sys, &out, ackFlag)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n  %+v\nwant\n  %+v", got, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("Parse wrote to out:\n%s", out.String())
			}
		})
	}
}

// mentions reports whether msg names a setting, as its flag, its variable or
// in words ("token ttl" for --token-ttl).
func mentions(msg, flagName, envName string) bool {
	norm := func(s string) string {
		return strings.NewReplacer("-", " ", "_", " ").Replace(strings.ToLower(s))
	}
	return strings.Contains(msg, envName) || strings.Contains(msg, flagName) || strings.Contains(norm(msg), norm(flagName))
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		setting string // the flag the error must name ("" for none)
		envName string // or its variable
		text    string // further text the error must hold
	}{
		{name: "bad duration in CAMD_TOKEN_TTL", env: map[string]string{"CAMD_TOKEN_TTL": "an hour"}, envName: "CAMD_TOKEN_TTL", text: "an hour"},
		{name: "bad duration in --token-ttl", args: []string{"--token-ttl=soon"}, setting: "token-ttl", text: "soon"},
		{name: "CAMD_TOKEN_TTL below the minimum", env: map[string]string{"CAMD_TOKEN_TTL": "10s"}, setting: "token-ttl", envName: "CAMD_TOKEN_TTL", text: "10s"},
		{name: "--token-ttl below the minimum", args: []string{"--token-ttl=10s"}, setting: "token-ttl", text: "10s"},
		{name: "CAMD_TOKEN_TTL above the maximum", env: map[string]string{"CAMD_TOKEN_TTL": "48h"}, setting: "token-ttl", envName: "CAMD_TOKEN_TTL", text: "48h"},
		{name: "--token-ttl above the maximum", args: []string{"--token-ttl=48h"}, setting: "token-ttl", text: "48h"},
		{name: "--token-ttl zero", args: []string{"--token-ttl=0s"}, setting: "token-ttl", text: "0s"},
		{name: "--token-ttl negative", args: []string{"--token-ttl=-1h"}, setting: "token-ttl", text: "-1h"},
		{name: "--token-ttl just under the minimum", args: []string{"--token-ttl=59s"}, setting: "token-ttl", text: "59s"},
		{name: "--token-ttl just over the maximum", args: []string{"--token-ttl=24h0m1s"}, setting: "token-ttl", text: "24h0m1s"},
		{name: "CAMD_LOG_FORMAT xml", env: map[string]string{"CAMD_LOG_FORMAT": "xml"}, setting: "log-format", envName: "CAMD_LOG_FORMAT", text: "xml"},
		{name: "--log-format xml", args: []string{"--log-format", "xml"}, setting: "log-format", text: "xml"},
		{name: "--log-format upper case", args: []string{"--log-format=JSON"}, setting: "log-format", text: "JSON"},
		{name: "--log-format empty", args: []string{"--log-format="}, setting: "log-format"},
		{name: "CAMD_LISTEN without port", env: map[string]string{"CAMD_LISTEN": "nonsense"}, setting: "listen", envName: "CAMD_LISTEN", text: "nonsense"},
		{name: "--listen without port", args: []string{"--listen=nonsense"}, setting: "listen", text: "nonsense"},
		{name: "--listen host only", args: []string{"--listen=127.0.0.1"}, setting: "listen", text: "127.0.0.1"},
		{name: "--listen empty port", args: []string{"--listen=localhost:"}, setting: "listen", text: "localhost:"},
		{name: "--listen empty", args: []string{"--listen="}, setting: "listen"},
		{name: "--listen without a value", args: []string{"--listen"}, setting: "listen"},
		{name: "positional argument", args: []string{"extra"}, text: `"extra"`},
		{name: "positional argument after flags", args: []string{"--listen=:1", "more"}, text: `"more"`},
		{name: "positional argument after --", args: []string{"--", "--listen=:1"}, text: `"--listen=:1"`},
		{name: "unknown flag", args: []string{"--nope"}, text: "nope"},
		{name: "CAMD_MAX_CONNS not a number", env: map[string]string{"CAMD_MAX_CONNS": "many"}, envName: "CAMD_MAX_CONNS", text: "many"},
		{name: "--max-conns negative", args: []string{"--max-conns=-1"}, setting: "max-conns", envName: "CAMD_MAX_CONNS", text: "-1"},
		{name: "CAMD_MAX_CONNS_PER_ADDR negative", env: map[string]string{"CAMD_MAX_CONNS_PER_ADDR": "-5"}, setting: "max-conns-per-addr", envName: "CAMD_MAX_CONNS_PER_ADDR", text: "-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := config.Parse("serve", tt.args, envOf(tt.env), bareSystem, &out, ackFlag)
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want an error", got)
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse error %v is flag.ErrHelp", err)
			}
			msg := err.Error()
			if (tt.setting != "" || tt.envName != "") && !mentions(msg, tt.setting, tt.envName) {
				t.Errorf("error %q names neither --%s nor %s", msg, tt.setting, tt.envName)
			}
			if !strings.Contains(msg, tt.text) {
				t.Errorf("error %q does not contain %q", msg, tt.text)
			}
			if !reflect.DeepEqual(got, config.Config{}) {
				t.Errorf("Parse returned %+v with an error", got)
			}
			if out.Len() != 0 {
				t.Errorf("Parse wrote to out on an error:\n%s", out.String())
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"--listen=:1", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			// Help is printed even when a variable would not parse.
			got, err := config.Parse("serve", args, envOf(map[string]string{"CAMD_TOKEN_TTL": "bogus"}), bareSystem, &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse error = %v, want flag.ErrHelp", err)
			}
			if !reflect.DeepEqual(got, config.Config{}) {
				t.Errorf("Parse returned %+v with help", got)
			}
			usage := out.String()
			for _, want := range []string{
				"--listen", "--data-dir", "--secret-file", "--token-ttl", "--log-format",
				"CAMD_LISTEN", "CAMD_DATA_DIR", "CAMD_SECRET_FILE", "CAMD_TOKEN_TTL", "CAMD_LOG_FORMAT",
				"--clock", "CAMD_CLOCK", "--ntp-servers", "CAMD_NTP_SERVERS", "--ntp-interval", "CAMD_NTP_INTERVAL",
				"--set-system-clock", "CAMD_SET_SYSTEM_CLOCK", "(default auto)", "0.pool.ntp.org",
				"--tls", "CAMD_TLS", "--tls-cert", "CAMD_TLS_CERT", "--tls-key", "CAMD_TLS_KEY", "--trusted-proxies", "CAMD_TRUSTED_PROXIES",
				"--clock-max-ahead", "CAMD_CLOCK_MAX_AHEAD", "(default 43800h0m0s)",
				"--max-conns", "CAMD_MAX_CONNS", "--max-conns-per-addr", "CAMD_MAX_CONNS_PER_ADDR", "(default 64)",
				"(default :8080)", "(default 1h0m0s)", "(default text)",
				"camd passwd", "camd version",
			} {
				if !strings.Contains(usage, want) {
					t.Errorf("usage lacks %q:\n%s", want, usage)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := config.Config{Listen: ":8080", DataDir: "/d", TokenTTL: time.Hour, LogFormat: "text", ClockMode: "auto", NTPServers: "127.0.0.1:11123", NTPInterval: time.Hour}
	tests := []struct {
		name    string
		change  func(c *config.Config)
		wantErr string // "" for valid
	}{
		{name: "valid", change: func(c *config.Config) {}},
		{name: "json", change: func(c *config.Config) { c.LogFormat = "json" }},
		{name: "ipv6", change: func(c *config.Config) { c.Listen = "[::]:443" }},
		{name: "named port", change: func(c *config.Config) { c.Listen = "localhost:http" }},
		{name: "min ttl", change: func(c *config.Config) { c.TokenTTL = config.MinTokenTTL }},
		{name: "max ttl", change: func(c *config.Config) { c.TokenTTL = config.MaxTokenTTL }},
		{name: "ttl below min", change: func(c *config.Config) { c.TokenTTL = config.MinTokenTTL - time.Nanosecond }, wantErr: "--token-ttl"},
		{name: "ttl above max", change: func(c *config.Config) { c.TokenTTL = config.MaxTokenTTL + time.Nanosecond }, wantErr: "--token-ttl"},
		{name: "zero ttl", change: func(c *config.Config) { c.TokenTTL = 0 }, wantErr: "--token-ttl"},
		{name: "empty data dir", change: func(c *config.Config) { c.DataDir = "" }, wantErr: "--data-dir (CAMD_DATA_DIR)"},
		{name: "lockout prefix unset means 64", change: func(c *config.Config) { c.LockoutIPv6Prefix = 0 }},
		{name: "lockout prefix /32", change: func(c *config.Config) { c.LockoutIPv6Prefix = 32 }},
		{name: "lockout prefix /128", change: func(c *config.Config) { c.LockoutIPv6Prefix = 128 }},
		{name: "lockout prefix too short", change: func(c *config.Config) { c.LockoutIPv6Prefix = 31 }, wantErr: "--lockout-ipv6-prefix 31 (CAMD_LOCKOUT_IPV6_PREFIX)"},
		{name: "lockout prefix too long", change: func(c *config.Config) { c.LockoutIPv6Prefix = 129 }, wantErr: "--lockout-ipv6-prefix 129 (CAMD_LOCKOUT_IPV6_PREFIX)"},
		{name: "lockout prefix negative", change: func(c *config.Config) { c.LockoutIPv6Prefix = -1 }, wantErr: "--lockout-ipv6-prefix -1"},
		{name: "empty listen", change: func(c *config.Config) { c.Listen = "" }, wantErr: "listen"},
		{name: "too many colons", change: func(c *config.Config) { c.Listen = "::1:80" }, wantErr: "listen"},
		{name: "empty log format", change: func(c *config.Config) { c.LogFormat = "" }, wantErr: "--log-format"},
		{name: "clock ntp", change: func(c *config.Config) { c.ClockMode = "ntp" }},
		{name: "clock system needs no servers", change: func(c *config.Config) { c.ClockMode = "system"; c.NTPServers = "" }},
		{name: "clock bad", change: func(c *config.Config) { c.ClockMode = "rtc" }, wantErr: "--clock \"rtc\" (CAMD_CLOCK)"},
		{name: "no servers", change: func(c *config.Config) { c.NTPServers = " , " }, wantErr: "--ntp-servers (CAMD_NTP_SERVERS) is empty"},
		{name: "server ipv6 bare", change: func(c *config.Config) { c.NTPServers = "::1" }},
		{name: "server ipv6 port", change: func(c *config.Config) { c.NTPServers = "[::1]:11123" }},
		{name: "server host port", change: func(c *config.Config) { c.NTPServers = "a.example:123,b.example" }},
		{name: "server port zero", change: func(c *config.Config) { c.NTPServers = "a.example:0" }, wantErr: `"a.example:0": port "0"`},
		{name: "server port too big", change: func(c *config.Config) { c.NTPServers = "a.example:70000" }, wantErr: `port "70000"`},
		{name: "server port not a number", change: func(c *config.Config) { c.NTPServers = "a.example:ntp" }, wantErr: `port "ntp"`},
		{name: "server empty host", change: func(c *config.Config) { c.NTPServers = ":123" }, wantErr: "want host or host:port"},
		{name: "server url", change: func(c *config.Config) { c.NTPServers = "ntp://a.example" }, wantErr: `port "//a.example"`},
		{name: "server with space", change: func(c *config.Config) { c.NTPServers = "a b" }, wantErr: "want host or host:port"},
		{name: "interval min", change: func(c *config.Config) { c.NTPInterval = config.MinNTPInterval }},
		{name: "interval below min", change: func(c *config.Config) { c.NTPInterval = 59 * time.Second }, wantErr: "--ntp-interval 59s (CAMD_NTP_INTERVAL)"},
		{name: "interval above max", change: func(c *config.Config) { c.NTPInterval = 25 * time.Hour }, wantErr: "--ntp-interval"},
		{name: "set system clock with ntp", change: func(c *config.Config) { c.SetSystemClock = true }},
		{name: "clock max ahead zero is the default", change: func(c *config.Config) { c.ClockMaxAhead = 0 }},
		{name: "clock max ahead min", change: func(c *config.Config) { c.ClockMaxAhead = config.MinClockMaxAhead }},
		{name: "clock max ahead max", change: func(c *config.Config) { c.ClockMaxAhead = config.MaxClockMaxAhead }},
		{name: "clock max ahead below min", change: func(c *config.Config) { c.ClockMaxAhead = time.Hour }, wantErr: "--clock-max-ahead 1h0m0s (CAMD_CLOCK_MAX_AHEAD): must be between 24h0m0s and"},
		{name: "clock max ahead above max", change: func(c *config.Config) { c.ClockMaxAhead = config.MaxClockMaxAhead + time.Hour }, wantErr: "--clock-max-ahead"},
		{name: "clock max ahead negative", change: func(c *config.Config) { c.ClockMaxAhead = -time.Hour }, wantErr: "(CAMD_CLOCK_MAX_AHEAD)"},
		{name: "tls auto", change: func(c *config.Config) { c.TLS = "auto" }},
		{name: "tls bad", change: func(c *config.Config) { c.TLS = "on" }, wantErr: `--tls "on" (CAMD_TLS)`},
		{name: "tls files without key", change: func(c *config.Config) { c.TLS = "files"; c.TLSCert = "/c" }, wantErr: "--tls files needs both"},
		{name: "tls auto with files", change: func(c *config.Config) { c.TLS = "auto"; c.TLSCert = "/c"; c.TLSKey = "/k" }, wantErr: "need --tls files"},
		{name: "memory limit MiB", change: func(c *config.Config) { c.MemoryLimit = "32MiB" }},
		{name: "memory limit off", change: func(c *config.Config) { c.MemoryLimit = "off" }},
		{name: "memory limit bytes", change: func(c *config.Config) { c.MemoryLimit = "16777216" }},
		{name: "memory limit too small", change: func(c *config.Config) { c.MemoryLimit = "4MiB" }, wantErr: "below 8MiB"},
		{name: "memory limit junk", change: func(c *config.Config) { c.MemoryLimit = "lots" }, wantErr: `--memory-limit "lots" (CAMD_MEMORY_LIMIT)`},
		{name: "memory limit MB", change: func(c *config.Config) { c.MemoryLimit = "24MB" }, wantErr: "--memory-limit"},
		{name: "proxies", change: func(c *config.Config) { c.TrustedProxies = "10.0.0.0/8, 192.0.2.1 ,::1" }},
		{name: "proxies bad", change: func(c *config.Config) { c.TrustedProxies = "10.0.0.0/33" }, wantErr: `--trusted-proxies (CAMD_TRUSTED_PROXIES) "10.0.0.0/33"`},
		{name: "max conns from the file limit", change: func(c *config.Config) { c.MaxConns = 0 }},
		{name: "max conns 1", change: func(c *config.Config) { c.MaxConns = 1 }},
		{name: "max conns at the bound", change: func(c *config.Config) { c.MaxConns = config.MaxMaxConns }},
		{name: "max conns over the bound", change: func(c *config.Config) { c.MaxConns = config.MaxMaxConns + 1 }, wantErr: "--max-conns 1048577 (CAMD_MAX_CONNS)"},
		{name: "max conns negative", change: func(c *config.Config) { c.MaxConns = -1 }, wantErr: "--max-conns -1 (CAMD_MAX_CONNS)"},
		{name: "per-address cap off", change: func(c *config.Config) { c.MaxConnsPerAddr = 0 }},
		{name: "per-address cap above the total", change: func(c *config.Config) { c.MaxConns = 10; c.MaxConnsPerAddr = 100 }},
		{name: "per-address cap negative", change: func(c *config.Config) { c.MaxConnsPerAddr = -1 }, wantErr: "--max-conns-per-addr -1 (CAMD_MAX_CONNS_PER_ADDR)"},
		{name: "per-address cap over the bound", change: func(c *config.Config) { c.MaxConnsPerAddr = config.MaxMaxConns + 1 }, wantErr: "--max-conns-per-addr"},
		{name: "set system clock with system", change: func(c *config.Config) { c.ClockMode = "system"; c.SetSystemClock = true }, wantErr: "--set-system-clock (CAMD_SET_SYSTEM_CLOCK) needs NTP"},
		// Found by FuzzParse: overflowing sizes, unchecked ports, control
		// characters in server names.
		{"memory limit 2^63 bytes", func(c *config.Config) { c.MemoryLimit = "8589934592GiB" }, "--memory-limit"},
		{"memory limit 2^64+16GiB bytes", func(c *config.Config) { c.MemoryLimit = "17179869200GiB" }, "--memory-limit"},
		{"memory limit 2^64 bytes", func(c *config.Config) { c.MemoryLimit = "17179869184GiB" }, "--memory-limit"},
		{"memory limit MaxInt64 KiB", func(c *config.Config) { c.MemoryLimit = "9223372036854775807KiB" }, "--memory-limit"},
		{"memory limit largest GiB", func(c *config.Config) { c.MemoryLimit = "8589934591GiB" }, ""},
		{"memory limit MaxInt64 B", func(c *config.Config) { c.MemoryLimit = "9223372036854775807B" }, ""},
		{"listen port a letter", func(c *config.Config) { c.Listen = ":A" }, `--listen ":A" (CAMD_LISTEN): port "A"`},
		{"listen port too big", func(c *config.Config) { c.Listen = "127.0.0.1:65536" }, `port "65536"`},
		{"listen port negative", func(c *config.Config) { c.Listen = "[::1]:-1" }, `port "-1"`},
		{"listen port 65535", func(c *config.Config) { c.Listen = ":65535" }, ""},
		{"listen port 0", func(c *config.Config) { c.Listen = "127.0.0.1:0" }, ""},
		{"listen port by name", func(c *config.Config) { c.Listen = "localhost:https" }, ""},
		{"server a control character", func(c *config.Config) { c.NTPServers = "\x10" }, `"\x10": want host or host:port`},
		{"server a tab inside", func(c *config.Config) { c.NTPServers = "ntp\tserver:123" }, "want host or host:port"},
		{"server a NUL inside", func(c *config.Config) { c.NTPServers = "a.example,ntp\x00x" }, "want host or host:port"},
		{"server a no-break space inside", func(c *config.Config) { c.NTPServers = "ntp\u00a0x" }, "want host or host:port"},
		{"server with a zone", func(c *config.Config) { c.NTPServers = "[fe80::1%eth0]:123" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", c, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate(%+v) = %v, want an error about %q", c, err, tt.wantErr)
			}
			if tt.wantErr == "" && err == nil {
				checkSane(t, c)
			}
		})
	}
}

func TestHostSystem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sys := config.HostSystem()
	tests := []struct {
		name  string
		got   bool
		want  bool
		check string
	}{
		{"root is a mount point", sys.IsMountPoint("/"), true, "IsMountPoint(/)"},
		{"proc is a mount point", sys.IsMountPoint("/proc"), true, "IsMountPoint(/proc)"},
		{"temp dir is not", sys.IsMountPoint(filepath.Join(dir, "x")), false, "IsMountPoint(temp)"},
		{"dir is a dir", sys.IsDir(dir), true, "IsDir(dir)"},
		{"file is not a dir", sys.IsDir(file), false, "IsDir(file)"},
		{"missing is not a dir", sys.IsDir(filepath.Join(dir, "missing")), false, "IsDir(missing)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.check, tt.got, tt.want)
			}
		})
	}
}
