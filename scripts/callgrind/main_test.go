package main

import "testing"

const listing = `--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
417,189,969 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
38,151,000 ( 9.14%)  ???:crypto/internal/fips140/sha256.blockAVX2.abi0 [/tmp/d/camd-linux-amd64]
13,030,806 ( 3.12%)  /usr/local/go/src/runtime/malloc.go:runtime.mallocgcSmallScanNoHeader [/tmp/d/camd-linux-amd64]
   903,135 ( 0.22%)  ./nptl/./nptl/pthread_create.c:start_thread [/usr/lib/x86_64-linux-gnu/libc.so.6]
 1,000 ( 0.00%)  /x/a.go:runtime.mallocgcSmallScanNoHeader [/tmp/d/camd-linux-amd64]
    10 ( 0.00%)  /x/a.go:runtime.mallocgcSmallScanNoHeader'2 [/tmp/d/camd-linux-amd64]
`

func TestParseAnnotate(t *testing.T) {
	pr, err := parseAnnotate(listing)
	if err != nil {
		t.Fatal(err)
	}
	if pr.total != 417189969 {
		t.Errorf("total %v, want 417189969", pr.total)
	}
	tests := []struct {
		fn   string
		want float64
	}{
		{"crypto/internal/fips140/sha256.blockAVX2.abi0", 38151000},
		{"runtime.mallocgcSmallScanNoHeader", 13031816}, // two files and a recursion level, summed
		{"start_thread", 903135},
	}
	for _, tc := range tests {
		if got := pr.byFunc[tc.fn]; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.fn, got, tc.want)
		}
	}
	if len(pr.byFunc) != 3 {
		t.Errorf("%d functions, want 3: %v", len(pr.byFunc), pr.byFunc)
	}
	if _, err := parseAnnotate("no listing here"); err == nil {
		t.Error("a listing without totals was accepted")
	}
}
