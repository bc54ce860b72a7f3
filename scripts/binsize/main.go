// Command binsize says which packages a camd binary's bytes belong to, for
// scripts/binsize.sh:
//
//	go run ./scripts/binsize [-n 20] [-modules] BINARY_WITH_SYMBOLS [STRIPPED_BINARY]
//
// It reads the ELF symbol table (the binary must be linked without -s) and
// sums each symbol's size by the package its name starts with (or, with
// -modules, by module), per kind of section that is stored in the file:
// text (code), read-only data and data. Bytes that no symbol names are
// shown per section: the pclntab, Go's function table for stack traces and
// the garbage collector, which grows with the code (about 0.65 bytes per
// byte of text here), and the type descriptors and strings in .rodata. It
// prints a Markdown table, largest first, so docs/performance.md can carry
// it as printed.
package main

import (
	"cmp"
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	top := flag.Int("n", 20, "rows to list; the rest are summed in one row")
	byModule := flag.Bool("modules", false, "sum by module (std for the standard library) rather than by package")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: binsize [-n 20] [-modules] BINARY_WITH_SYMBOLS [STRIPPED_BINARY]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	r, err := measure(flag.Arg(0), *byModule)
	if err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
	stripped := int64(-1)
	if flag.NArg() == 2 {
		fi, err := os.Stat(flag.Arg(1))
		if err != nil {
			fmt.Fprintln(os.Stderr, "binsize:", err)
			os.Exit(1)
		}
		stripped = fi.Size()
	}
	r.write(os.Stdout, *top, stripped)
}

// kind is a class of section stored in the file.
type kind int

const (
	text kind = iota
	rodata
	data
	pclntab // a section of its own, shown as a row
	kinds
)

var kindNames = [kinds]string{"text", "read-only data", "data", "function table"}

// sizes are bytes per kind.
type sizes [kinds]int64

func (s sizes) total() (t int64) {
	for _, n := range s {
		t += n
	}
	return t
}

// report is a binary's stored bytes by package, and what no symbol covers.
type report struct {
	pkgs     map[string]*sizes
	unnamed  []section // bytes in a section that no symbol covers
	sections sizes     // all stored bytes per kind
	fileSize int64     // of the binary read, symbol table included
	unit     string    // what a row is: Package or Module
}

type section struct {
	name  string
	bytes int64
}

// sectionNames say what a section's bytes without a symbol are.
var sectionNames = map[string]string{
	".gopclntab": "function table for stack traces and the GC: ",
	".rodata":    "type descriptors and strings: ",
}

// classify says which kind a section is, and false for one that takes no
// room in a stripped file (bss, the symbol table, notes).
func classify(s *elf.Section) (kind, bool) {
	if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 {
		return 0, false
	}
	switch {
	case s.Name == ".gopclntab":
		return pclntab, true
	case s.Flags&elf.SHF_EXECINSTR != 0:
		return text, true
	case s.Flags&elf.SHF_WRITE != 0:
		return data, true
	}
	return rodata, true
}

func measure(path string, byModule bool) (*report, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	owner := func(pkg string) string { return pkg }
	if byModule {
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			return nil, err
		}
		mods := []string{bi.Main.Path}
		for _, m := range bi.Deps {
			mods = append(mods, m.Path)
		}
		owner = func(pkg string) string { return moduleOf(pkg, mods) }
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (link it without -s)", path, err)
	}
	r := &report{pkgs: map[string]*sizes{}, fileSize: fi.Size(), unit: "Package"}
	if byModule {
		r.unit = "Module"
	}
	named := make([]int64, len(f.Sections))
	for _, s := range syms {
		i := int(s.Section)
		if i <= 0 || i >= len(f.Sections) || s.Size == 0 {
			continue
		}
		k, ok := classify(f.Sections[i])
		if !ok || k == pclntab {
			continue // the function table's funcdata (go:func.*) stays with it
		}
		p := owner(pkgOf(s.Name))
		if r.pkgs[p] == nil {
			r.pkgs[p] = new(sizes)
		}
		r.pkgs[p][k] += int64(s.Size)
		named[i] += int64(s.Size)
	}
	for i, s := range f.Sections {
		k, ok := classify(s)
		if !ok {
			continue
		}
		r.sections[k] += int64(s.Size)
		if rest := int64(s.Size) - named[i]; rest > 0 {
			r.unnamed = append(r.unnamed, section{sectionNames[s.Name] + s.Name + ", no symbol", rest})
		}
	}
	slices.SortFunc(r.unnamed, func(a, b section) int { return cmp.Compare(b.bytes, a.bytes) })
	return r, nil
}

// pkgOf is the package a Go symbol belongs to: "net/http" for
// "net/http.(*Server).Serve", "type:.eq.net/url.URL" and
// "go:itab.*net/http.http2Transport,net/http.RoundTripper". Symbols of no
// package ("go:func.*", "gclocals·…", assembly helpers) keep a name of
// their own in parentheses.
func pkgOf(sym string) string {
	name := sym
	for _, prefix := range []string{"type:.eq.", "type:.hash.", "type:.gcmask.", "type:", "go:itab."} {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			name = rest
			break
		}
	}
	// Pointers, arrays and slices of a type are the type's package's.
	for {
		if rest, ok := strings.CutPrefix(name, "*"); ok {
			name = rest
		} else if i := strings.IndexByte(name, ']'); strings.HasPrefix(name, "[") && i > 0 {
			name = name[i+1:]
		} else {
			break
		}
	}
	if i := strings.IndexAny(name, "[(,"); i >= 0 {
		name = name[:i] // generic arguments, a method's receiver, an itab's interface
	}
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot <= 0 || strings.HasPrefix(sym, "go:") && name == sym || strings.ContainsAny(name[:slash+1+dot], "·:$ ") {
		return "(" + group(sym) + ")"
	}
	return name[:slash+1+dot]
}

// moduleOf is the module of mods that pkg belongs to, "std" for the standard
// library (its vendored copies of golang.org/x included), and pkg itself
// for a symbol of no package.
func moduleOf(pkg string, mods []string) string {
	if strings.HasPrefix(pkg, "(") {
		return pkg
	}
	best := ""
	for _, m := range mods {
		if (pkg == m || strings.HasPrefix(pkg, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return "std"
	}
	return best
}

// group is the bucket of a symbol of no package: "go:func.*", "gclocals",
// "$f64" (float constants), "type:" (functions of unnamed types).
func group(sym string) string {
	switch {
	case strings.HasPrefix(sym, "gclocals·"):
		return "gclocals"
	case strings.HasPrefix(sym, "type:"):
		return "type:"
	case strings.HasPrefix(sym, "$"):
		if i := strings.IndexByte(sym, '.'); i > 0 {
			return sym[:i]
		}
	}
	return sym
}

func (r *report) write(w io.Writer, top int, stripped int64) {
	type row struct {
		name string
		s    sizes
	}
	var rows []row
	for p, s := range r.pkgs {
		rows = append(rows, row{p, *s})
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.s.total(), a.s.total()), strings.Compare(a.name, b.name))
	})
	var rest row
	if len(rows) > top {
		rest.name = fmt.Sprintf("%d others", len(rows)-top)
		for _, x := range rows[top:] {
			for k := range kinds {
				rest.s[k] += x.s[k]
			}
		}
		rows = rows[:top]
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | Total |\n", r.unit, kindNames[text], kindNames[rodata], kindNames[data])
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	line := func(name string, s sizes) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, kb(s[text]), kb(s[rodata]), kb(s[data]), kb(s.total()))
	}
	for _, x := range rows {
		line("`"+x.name+"`", x.s)
	}
	if rest.name != "" {
		line(rest.name, rest.s)
	}
	for _, u := range r.unnamed {
		fmt.Fprintf(w, "| %s | | | | %s |\n", u.name, kb(u.bytes))
	}
	line("**stored sections**", r.sections)
	if stripped >= 0 {
		// Each segment starts on a page boundary, 64 KiB on arm and mips,
		// so the file grows in steps: a few bytes more can cost a page, or
		// nothing.
		fmt.Fprintf(w, "| headers, and padding to segment boundaries | | | | %s |\n", kb(stripped-r.sections.total()))
		fmt.Fprintf(w, "| **stripped file** | | | | **%s** (%d bytes) |\n", kb(stripped), stripped)
	}
}

// kb is bytes in KiB, one decimal, with thousands separated.
func kb(n int64) string {
	if n == 0 {
		return ""
	}
	s := fmt.Sprintf("%.1f", float64(n)/1024)
	whole, frac, _ := strings.Cut(s, ".")
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return whole + "." + frac + " KiB"
}
