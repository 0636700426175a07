// Package dist holds what ships beside the binary: the systemd unit and the
// example swanctl.conf. The example is embedded here so that `make demo`
// runs exactly the file an operator starts from.
package dist

import _ "embed"

// SwanctlConf is swanctl.conf of this directory: site A's side of a
// route-based site-to-site tunnel.
//
//go:embed swanctl.conf
var SwanctlConf string

// SwanctlRemoteAccessConf is swanctl-remote-access.conf of this directory:
// a gateway for road warriors with EAP-MSCHAPv2 and a virtual IP pool.
//
//go:embed swanctl-remote-access.conf
var SwanctlRemoteAccessConf string

// XdpsecConf is xdpsec.conf of this directory: the RADIUS servers of
// eap-radius connections.
//
//go:embed xdpsec.conf
var XdpsecConf string
