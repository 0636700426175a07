package vici

import (
	"strings"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// algorithmsPlugin is what get-algorithms names as the implementation:
// xdpsec's own (Go's crypto), where charon names its plugin.
const algorithmsPlugin = "xdpsec"

// cmdGetAlgorithms lists the IKE and ESP algorithms the engine implements,
// by charon's names and in charon 5.9's groups (key exchanges in "dh").
func cmdGetAlgorithms(s *Server, c *conn, req *Message) *Message {
	m := NewMessage()
	encr, aead := m.Section("encryption"), m.Section("aead")
	integ, prf, ke := m.Section("integrity"), m.Section("prf"), m.Section("dh")
	// Transform IDs are small: the IANA registries hold fewer than 64
	// of each type below the private-use range.
	for id := uint16(1); id < 64; id++ {
		e := transform.EncrID(id)
		if e.Supported(0) || e.Supported(128) || e.Supported(256) {
			name := transform.Transform{Type: transform.TransformENCR, ID: id}.String()
			if strings.Contains(name, "GCM") || strings.Contains(name, "CCM") || strings.Contains(name, "POLY1305") {
				aead.Set(name, algorithmsPlugin)
			} else {
				encr.Set(name, algorithmsPlugin)
			}
		}
		if transform.IntegID(id).Supported() {
			integ.Set(transform.Transform{Type: transform.TransformINTEG, ID: id}.String(), algorithmsPlugin)
		}
		if transform.PRFID(id).Supported() {
			prf.Set(transform.Transform{Type: transform.TransformPRF, ID: id}.String(), algorithmsPlugin)
		}
		if transform.KEID(id).Supported() {
			ke.Set(transform.Transform{Type: transform.TransformKE, ID: id}.String(), algorithmsPlugin)
		}
	}
	return m
}
