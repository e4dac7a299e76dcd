package feed

import (
	"slices"
	"testing"
)

func TestPositionsRoundTrip(t *testing.T) {
	for _, pos := range [][]uint64{{0}, {7}, {1234, 0, 88}, {1 << 62, 1, 2, 3}} {
		s := FormatPositions(pos)
		got, err := ParsePositions(s, uint32(len(pos)))
		if err != nil || !slices.Equal(got, pos) {
			t.Errorf("%v -> %q -> %v %v", pos, s, got, err)
		}
	}
	for _, bad := range []string{"", "1.", ".1", "1..2", "a.b", "-1.2", "1.2.3"} {
		if got, err := ParsePositions(bad, 2); err == nil {
			t.Errorf("%q read as %v, want an error", bad, got)
		}
	}
}
