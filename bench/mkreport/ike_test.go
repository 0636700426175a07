package main

import "testing"

// TestAgainst: a ratio checked against a target prints with two decimals
// unless they would round it across the target.
func TestAgainst(t *testing.T) {
	atLeast := func(x float64) bool { return x >= 0.8 }
	atMost := func(x float64) bool { return x <= 1.0/3 }
	for _, c := range []struct {
		x     float64
		meets func(float64) bool
		want  string
	}{
		{0.7987, atLeast, "0.799"},
		{0.79999, atLeast, "0.79999"},
		{0.8012, atLeast, "0.80"},
		{0.6234, atLeast, "0.62"},
		{0.3339, atMost, "0.334"},
		{0.3312, atMost, "0.33"},
		{0.45, atMost, "0.45"},
	} {
		if got := against(c.x, c.meets); got != c.want {
			t.Errorf("against(%v) = %s, want %s", c.x, got, c.want)
		}
	}
}
