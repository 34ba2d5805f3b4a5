package local

import (
	"testing"

	"bridge/drivers"
	"bridge/drivers/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T) drivers.Driver {
			d, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		},
		ChunkSize:      1 << 20,
		ForbiddenNames: []string{".", "..", "a/b", "nul\x00byte", ".bridge-upload-x"},
	})
}
