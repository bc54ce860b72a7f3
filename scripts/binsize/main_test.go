package main

import "testing"

func TestPkgOf(t *testing.T) {
	tests := []struct{ sym, want string }{
		{"net/http.(*Server).Serve", "net/http"},
		{"net/http.http2ConfigureServer", "net/http"},
		{"runtime.mallocgc", "runtime"},
		{"camd/modules/admin.(*Module).renderIndex.indexPage.func1.2", "camd/modules/admin"},
		{"github.com/labstack/echo/v4.(*Echo).ServeHTTP", "github.com/labstack/echo/v4"},
		{"github.com/labstack/echo/v4/middleware.BodyLimit", "github.com/labstack/echo/v4/middleware"},
		{"vendor/golang.org/x/net/idna.(*Profile).process", "vendor/golang.org/x/net/idna"},
		{"crypto/internal/entropy/v1%2e0%2e0.Seed", "crypto/internal/entropy/v1%2e0%2e0"},
		{"text/template.HTMLEscaper·f", "text/template"},
		{"slices.pdqsortCmpFunc[go.shape.struct { camd/platform/ntpclock.server string }]", "slices"},
		{"type:.eq.net/url.URL", "net/url"},
		{"type:.eq.[18]camd/config.FlagSpec", "camd/config"},
		{"type:.eq.[2]*image/color.Color", "image/color"},
		{"type:.eq.struct { camd/platform/connlimit.perAddr sync/atomic.Int64 }", "(type:)"},
		{"go:itab.*net/http.http2Transport,net/http.RoundTripper", "net/http"},
		{"go:func.*", "(go:func.*)"},
		{"go:string.*", "(go:string.*)"},
		{"gclocals·Sgn0onZkV46Inz+cvPW4wA==", "(gclocals)"},
		{"$f64.3fd0000000000000", "($f64)"},
		{"_rt0_arm_linux", "(_rt0_arm_linux)"},
	}
	for _, tt := range tests {
		if got := pkgOf(tt.sym); got != tt.want {
			t.Errorf("pkgOf(%q) = %q, want %q", tt.sym, got, tt.want)
		}
	}
}

func TestModuleOf(t *testing.T) {
	mods := []string{"camd", "github.com/labstack/echo/v4", "github.com/labstack/echo-jwt/v4", "golang.org/x/net"}
	tests := []struct{ pkg, want string }{
		{"camd", "camd"},
		{"camd/modules/admin", "camd"},
		{"github.com/labstack/echo/v4/middleware", "github.com/labstack/echo/v4"},
		{"github.com/labstack/echo-jwt/v4", "github.com/labstack/echo-jwt/v4"},
		{"golang.org/x/net/http2", "golang.org/x/net"},
		{"vendor/golang.org/x/net/idna", "std"},
		{"net/http", "std"},
		{"camdx/other", "std"}, // a prefix of a name is not its module
		{"(go:func.*)", "(go:func.*)"},
	}
	for _, tt := range tests {
		if got := moduleOf(tt.pkg, mods); got != tt.want {
			t.Errorf("moduleOf(%q) = %q, want %q", tt.pkg, got, tt.want)
		}
	}
}

func TestKB(t *testing.T) {
	for n, want := range map[int64]string{0: "", 51: "0.0 KiB", 1024: "1.0 KiB", 1536: "1.5 KiB", 2_963_149: "2,893.7 KiB", 1 << 30: "1,048,576.0 KiB"} {
		if got := kb(n); got != want {
			t.Errorf("kb(%d) = %q, want %q", n, got, want)
		}
	}
}
