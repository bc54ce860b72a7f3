package password

import (
	"fmt"
	"testing"
)

// BenchmarkVerify measures one owner-password check at the shipped cost, which
// is what every login and every /admin request pays.
func BenchmarkVerify(b *testing.B) {
	for _, p := range []Params{DefaultParams()} {
		b.Run(fmt.Sprintf("m=%dKiB,t=%d,p=%d", p.Memory, p.Time, p.Threads), func(b *testing.B) {
			s, err := Hash("correct horse battery staple", p)
			if err != nil {
				b.Fatal(err)
			}
			h, err := Parse(s)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if !h.Matches("correct horse battery staple") {
					b.Fatal("no match")
				}
			}
		})
	}
}
