package bench

import "testing"

// TestRespBlock: both responders run with the same block_threshold, none
// where cookies are off (charon's dos_protection = no), else 1000 unless
// the row sets one.
func TestRespBlock(t *testing.T) {
	for _, c := range []struct {
		s    respSettings
		want int
	}{
		{respSettings{cookieThreshold: -1}, 0},
		{respSettings{cookieThreshold: -1, blockThreshold: 5}, 0},
		{respSettings{cookieThreshold: 30}, 1000},
		{respSettings{cookieThreshold: 30, blockThreshold: 5}, 5},
	} {
		if got := c.s.block(); got != c.want {
			t.Errorf("%+v: block %d, want %d", c.s, got, c.want)
		}
	}
}
