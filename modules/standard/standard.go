// Package standard plugs camd's standard modules into app.DefaultRegistry.
// Import it for its side effects.
package standard

import (
	_ "camd/modules/ack"
	_ "camd/modules/admin"
	_ "camd/modules/apidoc"
	_ "camd/modules/auth"
	_ "camd/modules/health"
)
