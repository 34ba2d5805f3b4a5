package main

import (
	"bytes"
	"strings"
	"testing"
)

// The count is the same however the answer is cut into writes.
func TestTagCounterAcrossWrites(t *testing.T) {
	body := strings.Repeat("<D:response><D:href>/a</D:href></D:response>", 50)
	for _, size := range []int{1, 2, 3, 5, 8, 9, 10, 64, len(body)} {
		c := &tagCounter{tag: []byte("response>")}
		for b := []byte(body); len(b) > 0; {
			n := min(size, len(b))
			c.Write(b[:n])
			b = b[n:]
		}
		if want := bytes.Count([]byte(body), []byte("response>")); c.n != want {
			t.Errorf("writes of %d bytes: %d tags, want %d", size, c.n, want)
		}
	}
}
