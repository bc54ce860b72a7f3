// Package docs_test holds the manual to its links: every relative link in
// README.md, SECURITY.md and docs/*.md must name a file in the repository,
// and every #anchor a heading of the file it points into. A moved section
// otherwise leaves a dead link that nobody notices.
package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestLinks checks the repository's own manual.
func TestLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "SECURITY.md")}, docs...)
	for _, f := range files {
		problems, err := checkFile(root, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Error(p)
		}
	}
}

// TestChecker shows the checker finds what TestLinks relies on it to find.
func TestChecker(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want int // problems found
	}{
		{"file", "see [a](a.md) and ![img](img.png)", 0},
		{"anchor in another file", "[x](a.md#the-first-part)", 0},
		{"anchor of a heading with code and punctuation", "[x](a.md#flags-and-timeouts-gos)", 0},
		{"duplicate heading", "[x](a.md#again-1)", 0},
		{"anchor in this file", "# Top\n\n[x](#top)", 0},
		{"external links are not checked", "[x](https://example.com/nope) <mailto:a@b>", 0},
		{"reference definition", "[x][r]\n\n[r]: a.md", 0},
		{"link text across lines", "[two\nlines](a.md)", 0},
		{"code is not a link", "```\n[x](nope.md)\n```\n`[y](nope.md)` and ``[z](`nope`)``", 0},
		{"directory", "[d](sub/)", 0},
		{"missing file", "[x](nope.md)", 1},
		{"missing anchor", "[x](a.md#nope)", 1},
		{"missing anchor in this file", "# Top\n\n[x](#bottom)", 1},
		{"anchor into a file that has no headings", "[x](img.png#top)", 1},
		{"outside the repository", "[x](../../etc/passwd)", 1},
		{"missing reference target", "[r]: nope.md", 1},
		{"two broken", "[x](nope.md) [y](a.md#nope)", 2},
	}
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.md", "# The first part\n\n## Flags and `timeouts`: Go's\n\n## Again\n\n## Again\n\n```\n# not a heading\n```\n")
	write("img.png", "")
	write("sub/x.md", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := filepath.Join(root, "doc.md")
			write("doc.md", tt.doc)
			problems, err := checkFile(root, doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != tt.want {
				t.Errorf("found %d problems, want %d: %q", len(problems), tt.want, problems)
			}
		})
	}
}

var (
	// inlineLink is [text](target) or ![alt](target), with an optional
	// "title". The text may wrap lines but holds no brackets.
	inlineLink = regexp.MustCompile(`!?\[[^\[\]]*\]\(\s*([^()\s]+)(?:\s+"[^"]*")?\s*\)`)
	// refDef is a reference definition, [name]: target.
	refDef = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*(\S+)`)
	// atxHeading is a "# Heading" line.
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$`)
	// scheme starts an absolute URL such as https: or mailto:.
	scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// checkFile returns a line for each link in the markdown file path that
// does not resolve inside root.
func checkFile(root, path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := blankCode(string(raw))
	rel, _ := filepath.Rel(root, path)
	var problems []string
	check := func(offset int, target string) {
		if err := resolve(root, path, target); err != nil {
			line := 1 + strings.Count(text[:offset], "\n")
			problems = append(problems, fmt.Sprintf("%s:%d: link %q: %v", rel, line, target, err))
		}
	}
	for _, m := range inlineLink.FindAllStringSubmatchIndex(text, -1) {
		check(m[0], text[m[2]:m[3]])
	}
	for _, m := range refDef.FindAllStringSubmatchIndex(text, -1) {
		check(m[0], text[m[2]:m[3]])
	}
	return problems, nil
}

// resolve checks one link target written in the file from.
func resolve(root, from, target string) error {
	target = strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
	if scheme.MatchString(target) {
		return nil // not ours to check offline
	}
	file, anchor, _ := strings.Cut(target, "#")
	dest := from
	if file != "" {
		if strings.HasPrefix(file, "/") {
			return fmt.Errorf("absolute path; write it relative to %s", filepath.Base(from))
		}
		dest = filepath.Join(filepath.Dir(from), filepath.FromSlash(file))
		if r, err := filepath.Rel(root, dest); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return fmt.Errorf("points outside the repository")
		}
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("no such file")
		}
	}
	if anchor == "" {
		return nil
	}
	if !strings.HasSuffix(dest, ".md") {
		return fmt.Errorf("#%s: only markdown files have anchors", anchor)
	}
	anchors, err := headingAnchors(dest)
	if err != nil {
		return err
	}
	if !anchors[anchor] {
		return fmt.Errorf("no heading #%s in %s", anchor, filepath.Base(dest))
	}
	return nil
}

// headingAnchors returns the anchors GitHub makes for the headings of a
// markdown file.
func headingAnchors(path string) (map[string]bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(string(raw), "\n") {
		if isFence(line) {
			inFence = !inFence
			continue
		}
		m := atxHeading.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		slug := slugify(m[2])
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors, nil
}

// slugify is GitHub's heading anchor: the heading's text without its
// markup, lower case, with every character but letters, digits, "-" and "_"
// dropped and each space turned into "-".
func slugify(heading string) string {
	heading = inlineLink.ReplaceAllStringFunc(heading, func(s string) string {
		return s[strings.Index(s, "[")+1 : strings.Index(s, "]")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isFence(line string) bool {
	l := strings.TrimLeft(line, " ")
	return len(line)-len(l) <= 3 && (strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~"))
}

// blankCode replaces fenced code blocks and inline code spans with spaces,
// keeping newlines so that offsets still give line numbers: a link in code
// is an example, not a link.
func blankCode(text string) string {
	b := []byte(text)
	blank := func(from, to int) {
		for i := from; i < to; i++ {
			if b[i] != '\n' {
				b[i] = ' '
			}
		}
	}
	// Fenced blocks, line by line.
	inFence, start := false, 0
	for off := 0; off < len(text); {
		end := strings.IndexByte(text[off:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += off
		}
		line := text[off:end]
		switch {
		case isFence(line) && !inFence:
			inFence, start = true, off
		case isFence(line) && inFence:
			inFence = false
			blank(start, end)
		}
		off = end + 1
	}
	if inFence {
		blank(start, len(b))
	}
	// Code spans: a run of n backticks up to the next run of exactly n.
	s := string(b)
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		n := runLen(s, i)
		closing := -1
		for j := i + n; j < len(s); {
			if s[j] != '`' {
				j++
				continue
			}
			m := runLen(s, j)
			if m == n {
				closing = j
				break
			}
			j += m
		}
		if closing < 0 {
			i += n // a literal run of backticks
			continue
		}
		blank(i, closing+n)
		i = closing + n
	}
	return string(b)
}

// runLen is the length of the run of backticks at s[i].
func runLen(s string, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] == '`' {
		n++
	}
	return n
}
