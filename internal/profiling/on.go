//go:build camdprofile

package profiling

import (
	"os"
	"strings"
)

var off = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Split(os.Getenv("CAMD_PROFILE_OFF"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			m[f] = true
		}
	}
	return m
}()

// Off reports whether feature is named in CAMD_PROFILE_OFF.
func Off(feature string) bool { return off[feature] }
