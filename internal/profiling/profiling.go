// Package profiling switches single features of camd's request path off,
// so that a profile can measure what each one costs (docs/performance.md,
// "Where a request's time goes"). Only a build with the camdprofile tag
// reads the switches; in every other build Off is a constant false, and
// the compiler drops the branches that ask it.
package profiling

// The features that can be switched off, by the names CAMD_PROFILE_OFF
// takes, comma-separated.
const (
	AccessLog      = "log"      // the access line
	RequestID      = "rid"      // making and echoing X-Request-Id
	Headers        = "headers"  // nosniff, X-Frame-Options, Referrer-Policy
	Timeouts       = "timeouts" // the server's ReadTimeout and WriteTimeout
	ConnCaps       = "conns"    // the connection caps' listener and ConnState hook
	PasswordChange = "pwcheck"  // the per-request password-change check
)
