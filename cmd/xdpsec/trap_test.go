package main

import "testing"

func TestAgo(t *testing.T) {
	three := int64(3)
	if got := ago(&three); got != ",     3s ago" {
		t.Errorf("ago(3) = %q", got)
	}
	if got := ago(nil); got != "" {
		t.Errorf("ago(nil) = %q, want nothing for an SA never used", got)
	}
}
