package config_test

// A fuzz target for configuration parsing: durations, the listen address,
// NTP server lists, trusted proxies and the memory limit, through flags and
// CAMD_* variables. `go test` replays the seeds below and testdata/fuzz; the
// long run is
//
//	go test ./config -run '^$' -fuzz '^FuzzParse$' -fuzztime 10m -parallel 1

import (
	"errors"
	"flag"
	"io"
	"math/big"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"camd/config"
)

// fuzzSettings are the settings FuzzParse varies, in the order of its
// string arguments.
var fuzzSettings = []struct{ flag, env string }{
	{"listen", "CAMD_LISTEN"},
	{"token-ttl", "CAMD_TOKEN_TTL"},
	{"clock", "CAMD_CLOCK"},
	{"ntp-servers", "CAMD_NTP_SERVERS"},
	{"ntp-interval", "CAMD_NTP_INTERVAL"},
	{"trusted-proxies", "CAMD_TRUSTED_PROXIES"},
	{"memory-limit", "CAMD_MEMORY_LIMIT"},
	{"tls", "CAMD_TLS"},
}

// FuzzParse gives each setting a value as a flag, a variable, both or
// neither (two bits of how each; bit 16 adds --set-system-clock). Parse must
// not panic, and a Config it returns must be sane: see checkSane. The
// memory-limit value is also parsed on its own, so that its arithmetic is
// checked whatever the other settings do.
func FuzzParse(f *testing.F) {
	for _, s := range []struct {
		values [8]string
		how    uint32
	}{
		{[8]string{":8080", "1h", "auto", config.DefaultNTPServers, "1h", "", "24MiB", "off"}, 0x5555},
		{[8]string{"127.0.0.1:0", "1m", "system", "", "0", "10.0.0.0/8, 192.0.2.7", "off", "auto"}, 0xaaaa},
		{[8]string{"[::1]:http", "24h", "ntp", "[::1]:123,a.example,::1", "24h", "::1,fd00::/8", "8MiB", ""}, 0xffff},
		{[8]string{"localhost:99999", "59s", "ntp", "a.example:0", "25h", "10.0.0.0/33", "4MiB", "files"}, 0x5555},
		{[8]string{":", "-1h", "rtc", " , ", "1m", " ", "9223372036854775807B", "on"}, 0x5555},
		{[8]string{"host:-1", "1h0m0.000000001s", "auto", "ntp\tserver", "1h", ",", "8589934592GiB", "off"}, 0x5555},
		{[8]string{"[fe80::1%eth0]:8080", "90m", "auto", "[fe80::1%eth0]:123", "90m", "::ffff:10.0.0.1", "17179869200GiB", "off"}, 0x15555},
		{[8]string{":8080", "1h", "system", "", "1h", "", "24MiB", "off"}, 0x10000},
		{[8]string{"::1:80", "1.5h", "auto", "ntp://a.example", "1e3s", "10.0.0.1/8", " 24MiB ", "off"}, 0x5555},
	} {
		f.Add(s.values[0], s.values[1], s.values[2], s.values[3], s.values[4], s.values[5], s.values[6], s.values[7], s.how)
	}
	f.Fuzz(func(t *testing.T, listen, ttl, clock, servers, interval, proxies, memory, tls string, how uint32) {
		values := []string{listen, ttl, clock, servers, interval, proxies, memory, tls}
		var args []string
		env := map[string]string{}
		for i, s := range fuzzSettings {
			if how>>(2*i)&1 != 0 {
				args = append(args, "--"+s.flag+"="+values[i])
			}
			if how>>(2*i)&2 != 0 {
				env[s.env] = values[i]
			}
		}
		if how&(1<<16) != 0 {
			args = append(args, "--set-system-clock")
		}
		cfg, err := config.Parse("serve", args, envOf(env), bareSystem, io.Discard)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse(%q) asked for help", args)
			}
			if !reflect.DeepEqual(cfg, config.Config{}) {
				t.Fatalf("Parse returned %+v with error %v", cfg, err)
			}
		} else {
			checkSane(t, cfg)
		}
		checkMemoryLimit(t, memory)
	})
}

// checkSane fails unless cfg, which Parse returned, holds values camd can
// start with.
func checkSane(t *testing.T, cfg config.Config) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Parse returned %+v, which Validate refuses: %v", cfg, err)
	}
	// The listen address is one net.Listen takes: host:port, with a port
	// it can resolve (a number up to 65535 or a service name).
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "" {
		t.Fatalf("listen %q: %v", cfg.Listen, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		t.Fatalf("listen %q: the port is not one to listen on: %v", cfg.Listen, err)
	}
	if cfg.DataDir == "" {
		t.Fatal("empty data dir")
	}
	if cfg.TokenTTL < config.MinTokenTTL || cfg.TokenTTL > config.MaxTokenTTL {
		t.Fatalf("token TTL %v", cfg.TokenTTL)
	}
	switch cfg.ClockMode {
	case "system":
		if cfg.SetSystemClock {
			t.Fatal("--set-system-clock with --clock system")
		}
	case "auto", "ntp":
		if cfg.NTPInterval < config.MinNTPInterval || cfg.NTPInterval > config.MaxNTPInterval {
			t.Fatalf("NTP interval %v", cfg.NTPInterval)
		}
		list := cfg.Servers()
		if len(list) == 0 {
			t.Fatalf("--clock %s without NTP servers", cfg.ClockMode)
		}
		for _, s := range list {
			checkServer(t, s)
		}
	default:
		t.Fatalf("clock mode %q", cfg.ClockMode)
	}
	switch cfg.TLS {
	case "", "off", "auto":
		if cfg.TLSCert != "" || cfg.TLSKey != "" {
			t.Fatalf("TLS %q with files", cfg.TLS)
		}
	case "files":
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			t.Fatal("TLS files without both files")
		}
	default:
		t.Fatalf("TLS %q", cfg.TLS)
	}
	if n, err := cfg.MemoryLimitBytes(); err != nil || (n != 0 && n < 8<<20) {
		t.Fatalf("memory limit %q: %d, %v", cfg.MemoryLimit, n, err)
	}
	// Every comma-separated entry of the trusted proxies is one network.
	if strings.TrimSpace(cfg.TrustedProxies) != "" {
		nets := cfg.Proxies()
		if want := strings.Count(cfg.TrustedProxies, ",") + 1; len(nets) != want {
			t.Fatalf("trusted proxies %q: %d networks, want %d", cfg.TrustedProxies, len(nets), want)
		}
		for _, n := range nets {
			if ones, bits := n.Mask.Size(); bits == 0 || bits != 8*len(n.IP) || ones > bits {
				t.Fatalf("trusted proxies %q: network %v", cfg.TrustedProxies, n)
			}
		}
	}
}

// checkServer fails unless s is an NTP server the client can query: an IP
// address, or a host with an optional port from 1 to 65535, with no spaces
// or control characters.
func checkServer(t *testing.T, s string) {
	t.Helper()
	if net.ParseIP(s) != nil {
		return
	}
	host, port := s, ""
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			t.Fatalf("NTP server %q: %v", s, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("NTP server %q: port %q", s, port)
		}
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		t.Fatalf("NTP server %q: host %q", s, host)
	}
}

// checkMemoryLimit fails unless MemoryLimitBytes of v, when it succeeds,
// is exactly the number times its unit: no overflow into another value.
func checkMemoryLimit(t *testing.T, v string) {
	t.Helper()
	n, err := config.Config{MemoryLimit: v}.MemoryLimitBytes()
	if err != nil {
		if n != 0 {
			t.Fatalf("MemoryLimitBytes(%q) = %d with error %v", v, n, err)
		}
		return
	}
	s := strings.TrimSpace(v)
	if s == "" || s == "off" {
		if n != 0 {
			t.Fatalf("MemoryLimitBytes(%q) = %d, want 0", v, n)
		}
		return
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	num, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("MemoryLimitBytes(%q) = %d, but %q is not a number", v, n, s)
	}
	want := num.Mul(num, big.NewInt(mult))
	if want.Sign() <= 0 || !want.IsInt64() || want.Int64() != n {
		t.Fatalf("MemoryLimitBytes(%q) = %d, want %v bytes", v, n, want)
	}
}
