package pairing_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"camd/pairing"
)

// A token about the size of a real client token (a JWT of some 300 bytes),
// so the QR code is of the version the phone really scans.
var token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + strings.Repeat("eyJzdWIiOiJjbGllbnQ6cG9yY2gtcGhvbmUi", 6) + ".c2lnbmF0dXJlLW9mLWZvcnR5LXRocmVlLWNoYXJzLWxvbmc"

const fp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

// TestJSON: the payload's exact text, the format docs/pairing.md and the
// Pairing schema promise apps: fields in this order, and tls_sha256 left
// out, not empty, over plain HTTP.
func TestJSON(t *testing.T) {
	tests := []struct {
		name, url, fp, want string
		scopes              []string
	}{
		{
			name: "plain HTTP", url: "http://192.168.1.20:8080", scopes: []string{"ack"},
			want: `{"type":"camd-pairing","v":1,"url":"http://192.168.1.20:8080","client":"porch-phone","scopes":["ack"],"token":"` + token + `"}`,
		},
		{
			name: "HTTPS", url: "https://192.168.1.20:8443", fp: fp, scopes: []string{"ack", "ack:read"},
			want: `{"type":"camd-pairing","v":1,"url":"https://192.168.1.20:8443","client":"porch-phone","scopes":["ack","ack:read"],"token":"` + token + `","tls_sha256":"` + fp + `"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pairing.New(tc.url, "porch-phone", tc.scopes, token, tc.fp).JSON()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("JSON() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestQR: the code is a square PNG large enough to scan off a screen, and
// DataURI carries exactly its bytes.
func TestQR(t *testing.T) {
	raw, err := pairing.New("https://192.168.1.20:8443", "porch-phone", []string{"ack"}, token, fp).QR()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("QR() is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != b.Dy() || b.Dx() <= 100 {
		t.Errorf("QR code is %dx%d px, want a square over 100 px", b.Dx(), b.Dy())
	}

	uri := pairing.DataURI(raw)
	b64, ok := strings.CutPrefix(uri, "data:image/png;base64,")
	if !ok {
		t.Fatalf("DataURI = %.40q..., want the data:image/png;base64, prefix", uri)
	}
	if back, err := base64.StdEncoding.DecodeString(b64); err != nil || !bytes.Equal(back, raw) {
		t.Errorf("DataURI does not carry the PNG's bytes (err %v)", err)
	}
}

// TestQRCarriesPayload: a QR decoder reads back exactly the payload's JSON,
// over plain HTTP and over HTTPS with the fingerprint, for tokens of a real
// client's size and twice that. The image is read as the pure code it is:
// gozxing's finder-pattern detector, made for camera pictures, misjudges
// the size of a few flawless codes (it rejects about 1 in 600 payload
// lengths from rsc.io/qr, and 1 in 15 from skip2/go-qrcode), and this test
// is about what the code carries.
func TestQRCarriesPayload(t *testing.T) {
	pure := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	for _, p := range []pairing.Payload{
		pairing.New("http://192.168.1.20:8080", "porch-phone", []string{"ack"}, token, ""),
		pairing.New("https://192.168.1.20:8443", "gate-esp32", []string{"ack", "ack:read"}, token+token, fp),
	} {
		want, err := p.JSON()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := p.QR()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("QR() is not a PNG: %v", err)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, pure)
		if err != nil {
			t.Fatalf("decode the QR code of %d bytes of JSON: %v", len(want), err)
		}
		if got := res.GetText(); got != want {
			t.Errorf("the QR code carries\n%s\nwant\n%s", got, want)
		}
	}
}

// BenchmarkQR measures making the pairing QR code as the admin page does it,
// for a token of a real client's size: the PNG is the page's costliest part.
func BenchmarkQR(b *testing.B) {
	p := pairing.New("https://192.168.1.20:8443", "porch-phone", []string{"ack", "ack:read"},
		strings.Repeat("x", 330), strings.Repeat("AB:", 31)+"AB")
	png, err := p.QR()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.QR(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(png)), "bytes/png")
}
