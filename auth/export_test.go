package auth

import "camd/platform/datadir"

// SetRotate replaces how s writes a new secret (secret.Rotate), so a test
// can interleave rotations.
func SetRotate(s *Service, rotate func(datadir.Dir) ([]byte, error)) { s.rotate = rotate }
