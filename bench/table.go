package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// row is one line of the result table. Empty cells print as "-".
type row struct {
	what, camd, ref, figure, goal, met string
}

var header = row{"What", "camd", "reference", "ratio/figure", "goal", "met?"}

// printTable writes rows as plain text in aligned columns, the numbers
// right-aligned, so the table reads the same in a terminal and a CI log.
func printTable(w io.Writer, rows []row) {
	all := append([]row{header}, rows...)
	cells := func(r row) []string { return []string{r.what, r.camd, r.ref, r.figure, r.goal, r.met} }
	width := make([]int, 6)
	for _, r := range all {
		for i, c := range cells(r) {
			width[i] = max(width[i], utf8.RuneCountInString(dash(c)))
		}
	}
	rightAligned := []bool{false, true, true, true, false, false}
	line := func(r row) {
		var b strings.Builder
		for i, c := range cells(r) {
			c = dash(c)
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString(" | ")
			}
			if rightAligned[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	total := 3 * 5
	for _, n := range width {
		total += n
	}
	fmt.Fprintln(w, strings.Repeat("-", total))
	for _, r := range rows {
		line(r)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// num formats a measured figure with precision that suits its size.
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "n/a"
	case math.Abs(x) >= 1000:
		return groupThousands(int64(math.Round(x)))
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// groupThousands writes 12345 as 12,345.
func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ratio formats a/b as "0.93".
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// verdict says whether a measured figure meets its goal.
func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
