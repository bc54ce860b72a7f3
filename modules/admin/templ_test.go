package admin

import (
	"bytes"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"github.com/a-h/templ/generator"
	parser "github.com/a-h/templ/parser/v2"
)

// TestTemplGenerated: every *_templ.go is what `go generate` makes from its
// .templ today, with the templ version in go.mod, so that an edited template
// whose Go was not regenerated fails here instead of shipping the old page.
// It runs templ's generator as `templ generate` does (parse, generate,
// gofmt), without fetching the command.
func TestTemplGenerated(t *testing.T) {
	sources, err := filepath.Glob("*.templ")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .templ files (%v)", err)
	}
	for _, src := range sources {
		t.Run(src, func(t *testing.T) {
			tf, err := parser.Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if _, err := generator.Generate(tf, &b, generator.WithVersion(templ.Version()), generator.WithFileName(src)); err != nil {
				t.Fatal(err)
			}
			want, err := format.Source(b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			goFile := strings.TrimSuffix(src, ".templ") + "_templ.go"
			got, err := os.ReadFile(goFile)
			if err != nil {
				t.Fatalf("%v: run go generate ./modules/admin", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale: run go generate ./modules/admin", goFile)
			}
		})
	}
	// And no generated file outlives its template.
	generated, _ := filepath.Glob("*_templ.go")
	for _, g := range generated {
		if _, err := os.Stat(strings.TrimSuffix(g, "_templ.go") + ".templ"); err != nil {
			t.Errorf("%s has no .templ: delete it", g)
		}
	}
}
