package snapshot

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
)

// Card's size: small enough to make in a few milliseconds at start, and a
// few kilobytes as a JPEG.
const (
	CardWidth  = 320
	CardHeight = 240
)

// bars are the colour bars of the top two thirds of the card, left to right.
var bars = []color.RGBA{
	{192, 192, 192, 255}, {192, 192, 0, 255}, {0, 192, 192, 255}, {0, 192, 0, 255},
	{192, 0, 192, 255}, {192, 0, 0, 255}, {0, 0, 192, 255},
}

// testCard is the image served when no file is configured: colour bars over
// a grey ramp, so a client's developer sees at a glance that decoding and
// colours are right.
func testCard() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, CardWidth, CardHeight))
	for y := range CardHeight {
		for x := range CardWidth {
			c := bars[x*len(bars)/CardWidth]
			if y >= CardHeight*2/3 {
				v := uint8(x * 255 / (CardWidth - 1))
				c = color.RGBA{v, v, v, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
