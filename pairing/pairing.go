// Package pairing builds what the phone app scans to talk to this cam: a
// small JSON document with the base URL, a client token and the HTTPS
// certificate's fingerprint, and the QR code that carries it.
//
// The format is documented in docs/pairing.md and, as the Pairing schema, in
// modules/apidoc/openapi.yaml; app developers build against those.
package pairing

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"rsc.io/qr"
)

// Type and Version identify the payload, so a scanner can tell a camd
// pairing code from any other QR code and refuse a format it does not know.
const (
	Type    = "camd-pairing"
	Version = 1
)

// Payload is the QR code's content.
type Payload struct {
	Type   string   `json:"type"`
	V      int      `json:"v"`
	URL    string   `json:"url"`    // base URL, e.g. https://192.168.1.20:8443
	Client string   `json:"client"` // the client's name in camd
	Scopes []string `json:"scopes"`
	Token  string   `json:"token"` // Authorization: Bearer <token>
	// TLSSHA256 is the certificate fingerprint to pin ("AB:CD:..."),
	// absent when camd serves plain HTTP.
	TLSSHA256 string `json:"tls_sha256,omitempty"`
}

// New returns the payload for a client token served at baseURL.
func New(baseURL, client string, scopes []string, token, tlsSHA256 string) Payload {
	return Payload{Type: Type, V: Version, URL: baseURL, Client: client, Scopes: scopes, Token: token, TLSSHA256: tlsSHA256}
}

// JSON is the payload as the QR code carries it.
func (p Payload) JSON() (string, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("pairing payload: %w", err)
	}
	return string(raw), nil
}

// modulePixels is the size of one QR module in the PNG: a client token of
// about 300 bytes makes a version 13-15 code, about 320 px wide, which a
// phone camera reads off a laptop screen.
const modulePixels = 4

// QR returns the payload's QR code as a PNG. Level M (15% recovery) keeps the
// code small enough to scan off a screen while tolerating glare. rsc.io/qr
// writes the 1-bit PNG itself; a QR package that goes through image/png
// costs the cam's binary some 0.2 MiB more.
func (p Payload) QR() ([]byte, error) {
	text, err := p.JSON()
	if err != nil {
		return nil, err
	}
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("pairing QR code: %w", err)
	}
	code.Scale = modulePixels
	return code.PNG(), nil
}

// DataURI returns the PNG as a data: URI, so the token never travels in a
// URL that a browser history or a log could keep.
func DataURI(png []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}
