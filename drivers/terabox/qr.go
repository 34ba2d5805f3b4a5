package terabox

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"strings"
)

// drawQR draws the QR code of a PNG in the terminal with half blocks (two
// modules a line), light on dark like qrterminal. No QR decoder is at
// hand, and none is needed: the image's modules are sampled on their grid,
// found from the top-left finder pattern (7 modules wide).
func drawQR(w io.Writer, pngData []byte) error {
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return errors.New("not a PNG image")
	}
	m, err := qrModules(img)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, renderModules(m))
	return err
}

// dark reports whether a pixel is dark (transparent is light).
func dark(img image.Image, x, y int) bool {
	r, g, b, a := img.At(x, y).RGBA()
	if a < 0x8000 {
		return false
	}
	return (299*r+587*g+114*b)/1000 < 0x8000
}

// qrModules samples the module grid of a QR code image: true is dark.
func qrModules(img image.Image) ([][]bool, error) {
	bounds := img.Bounds()
	minX, minY, maxX, maxY := bounds.Max.X, bounds.Max.Y, -1, -1
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if dark(img, x, y) {
				minX, minY = min(minX, x), min(minY, y)
				maxX, maxY = max(maxX, x), max(maxY, y)
			}
		}
	}
	if maxX < 0 {
		return nil, errors.New("the image is blank")
	}
	run := 0 // the finder pattern's top edge: 7 modules
	for x := minX; x <= maxX && dark(img, x, minY); x++ {
		run++
	}
	module := float64(run) / 7
	if module < 1 {
		return nil, errors.New("no finder pattern in the image")
	}
	n := int(math.Round(float64(maxX-minX+1) / module))
	if n < 21 || n > 177 || int(math.Round(float64(maxY-minY+1)/module)) != n {
		return nil, errors.New("the image does not look like a QR code")
	}
	grid := make([][]bool, n)
	for r := range grid {
		grid[r] = make([]bool, n)
		for c := range grid[r] {
			grid[r][c] = dark(img, minX+int((float64(c)+0.5)*module), minY+int((float64(r)+0.5)*module))
		}
	}
	return grid, nil
}

// renderModules draws modules with a 2-module quiet zone, two rows per
// line: a dark module is a blank (the terminal's background), a light one
// a block.
func renderModules(m [][]bool) string {
	const quiet = 2
	n := len(m)
	at := func(r, c int) bool {
		r, c = r-quiet, c-quiet
		return r >= 0 && c >= 0 && r < n && c < n && m[r][c]
	}
	var sb strings.Builder
	size := n + 2*quiet
	for r := 0; r < size; r += 2 {
		for c := 0; c < size; c++ {
			top, bottom := at(r, c), r+1 < size && at(r+1, c)
			switch {
			case top && bottom:
				sb.WriteString(" ")
			case top:
				sb.WriteString("▄")
			case bottom:
				sb.WriteString("▀")
			default:
				sb.WriteString("█")
			}
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
