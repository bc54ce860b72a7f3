//go:build !camdprofile

package profiling

import "testing"

// TestOffInShippedBuilds: without the camdprofile tag no feature can be
// switched off, whatever the environment says.
func TestOffInShippedBuilds(t *testing.T) {
	t.Setenv("CAMD_PROFILE_OFF", "log,rid,headers,timeouts,conns,pwcheck")
	for _, f := range []string{AccessLog, RequestID, Headers, Timeouts, ConnCaps, PasswordChange} {
		if Off(f) {
			t.Errorf("%s is off in a build without camdprofile", f)
		}
	}
}
