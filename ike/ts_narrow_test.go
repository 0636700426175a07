package ike

import "testing"

// Narrowing leaves out what lies inside another selector of the result
// (the packet's addresses an acquire proposes first), keeps the rest in
// our order.
func TestNarrowTSDropsRedundant(t *testing.T) {
	ts := func(s string) TrafficSelector { return MustParseTSSpecs(s)[0].TS }
	for _, tt := range []struct {
		configured, proposed []string
		want                 string
	}{
		{[]string{"10.1.0.0/16"}, []string{"10.1.0.5/32", "10.1.0.0/16"}, "10.1.0.0/16"},
		{[]string{"10.1.0.0/24"}, []string{"10.1.0.5/32", "10.1.0.0/16"}, "10.1.0.0/24"},
		{[]string{"10.1.0.5/32"}, []string{"10.1.0.5/32", "10.1.0.0/16"}, "10.1.0.5/32"},
		{[]string{"10.1.0.0/24", "10.3.0.0/24"}, []string{"10.1.0.5/32", "10.0.0.0/8"}, "10.1.0.0/24 10.3.0.0/24"},
		{[]string{"10.1.0.0/16[tcp]", "10.1.0.0/16"}, []string{"10.1.0.0/16"}, "10.1.0.0/16"},
	} {
		var conf, prop []TrafficSelector
		for _, s := range tt.configured {
			conf = append(conf, ts(s))
		}
		for _, s := range tt.proposed {
			prop = append(prop, ts(s))
		}
		if got := formatTS(narrowTS(conf, prop)); got != tt.want {
			t.Errorf("narrow %v by %v: %s, want %s", tt.configured, tt.proposed, got, tt.want)
		}
	}
}
