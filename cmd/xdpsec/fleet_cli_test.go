package main

import "testing"

// TestFleetNotifyArgs: `xdpsec fleet notify` takes STATE SHARED and
// keepalived's own notify arguments, and refuses anything else.
func TestFleetNotifyArgs(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		state, shared string
		bad           bool
	}{
		{args: []string{"master", "wan"}, state: "master", shared: "wan"},
		{args: []string{"BACKUP", "192.0.2.1"}, state: "backup", shared: "192.0.2.1"},
		{args: []string{"INSTANCE", "wan", "MASTER", "100"}, state: "master", shared: "wan"},
		{args: []string{"GROUP", "wan", "FAULT"}, state: "fault", shared: "wan"},
		{args: []string{"INSTANCE", "wan", "MASTER", "high"}, bad: true},
		{args: []string{"leader", "wan"}, bad: true},
		{args: []string{"wan"}, bad: true},
		{args: []string{"INSTANCE", "wan", "up", "100"}, bad: true},
	} {
		state, shared, err := notifyArgs(tc.args)
		if tc.bad != (err != nil) || state != tc.state || shared != tc.shared {
			t.Errorf("%q: %q %q %v", tc.args, state, shared, err)
		}
	}
}
