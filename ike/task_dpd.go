package ike

import "github.com/xdpsec/xdpsec/ike/message"

// dpd is a liveness check (RFC 7296 section 2.4): an empty INFORMATIONAL
// request that the peer must answer.
type dpd struct {
	sa *ikeSA
}

func newDPD(sa *ikeSA, _ bool) *dpd { return &dpd{sa: sa} }

func (t *dpd) kind() taskKind                   { return taskDPD }
func (t *dpd) exchange() message.ExchangeType   { return message.INFORMATIONAL }
func (t *dpd) build(m *message.Message) error   { return nil }
func (t *dpd) process(m *message.Message) error { return nil }
