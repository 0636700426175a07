package dist

import (
	"testing"
	"testing/fstest"

	"github.com/xdpsec/xdpsec/ike/swanctl"
)

// TestXdpsecConf: the example settings load as they ship.
func TestXdpsecConf(t *testing.T) {
	fsys := fstest.MapFS{"etc/xdpsec/xdpsec.conf": &fstest.MapFile{Data: []byte(XdpsecConf), Mode: 0o600}}
	st, err := swanctl.LoadSettings(swanctl.FromFS(fsys), "/etc/xdpsec/xdpsec.conf")
	if err != nil {
		t.Fatal(err)
	}
	if st.Radius == nil || len(st.Radius.Servers) != 1 || st.Radius.Servers[0].Address != "192.0.2.9" {
		t.Errorf("radius %+v", st.Radius)
	}
}
