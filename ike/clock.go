package ike

import "time"

// Clock is the engine's source of time and timers, so that tests drive
// retransmissions, rekeys and liveness checks deterministically
// (ike/iketest.Clock). Timer callbacks run on whatever goroutine the
// clock uses and take the engine's lock themselves.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending callback of a Clock.
type Timer interface {
	// Stop prevents the callback from running; it reports whether it did.
	Stop() bool
}

// SystemClock is the Clock of package time.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
