package ike

import (
	"testing"
	"unsafe"
)

// TestStructSizes keeps what every established IKE SA holds in the
// allocator's size classes it was packed into: a field more can cost a
// whole class (ikeSA: 1024 -> 1152 bytes, over 100 MB at 100,000 IKE SAs
// in the GC's headroom and peak). Objects of 512 bytes and more that hold
// pointers carry an 8-byte header, hence 1016 for the 1024-byte class.
func TestStructSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, c := range []struct {
		name      string
		size, max uintptr
	}{
		{"ikeSA", unsafe.Sizeof(ikeSA{}), 1016},
		{"childSA", unsafe.Sizeof(childSA{}), 320},
		{"taskManager", unsafe.Sizeof(taskManager{}), 288},
		{"queuedTimer", unsafe.Sizeof(queuedTimer{}), 80},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, more than %d: pack it (flags side by side, rare state behind a pointer)", c.name, c.size, c.max)
		}
	}
}
