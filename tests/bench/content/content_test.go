package content

import (
	"bytes"
	"io"
	"testing"
)

func TestReadAtAgreesWithSequentialRead(t *testing.T) {
	c := New(7, 3*BlockSize+12345)
	all, err := io.ReadAll(c.Reader())
	if err != nil || int64(len(all)) != c.Size {
		t.Fatalf("ReadAll: %d bytes, %v", len(all), err)
	}
	for _, r := range [][2]int64{{0, 1}, {5, 40}, {BlockSize - 3, 10}, {2*BlockSize + 1, BlockSize}, {c.Size - 100, 100}} {
		p := make([]byte, r[1])
		if n, err := c.ReadAt(p, r[0]); n != len(p) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d): %d, %v", r[0], r[1], n, err)
		}
		if !bytes.Equal(p, all[r[0]:r[0]+r[1]]) {
			t.Errorf("ReadAt(%d, %d) differs from the sequential read", r[0], r[1])
		}
	}
	if err := c.Compare(bytes.NewReader(all[BlockSize+9:]), BlockSize+9, c.Size-BlockSize-9); err != nil {
		t.Errorf("Compare of the right bytes: %v", err)
	}
	all[2*BlockSize+77] ^= 1
	if err := c.Compare(bytes.NewReader(all), 0, c.Size); err == nil {
		t.Error("Compare missed a changed byte")
	}
}

func TestBlocksDifferAcrossSeedsAndIndexes(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(0); seed < 4; seed++ {
		c := New(seed, 4*BlockSize)
		for i := int64(0); i < 4; i++ {
			p := make([]byte, BlockSize)
			c.ReadAt(p, i*BlockSize)
			// Past the header too: a dedup by a block's tail must fail.
			k := string(p[16:4096])
			if seen[k] {
				t.Fatalf("seed %d block %d repeats an earlier block", seed, i)
			}
			seen[k] = true
		}
	}
}
