package maps

import "encoding/binary"

// bpfNone is XS_NONE of the header: "no entry" in chains and CPU fields.
const bpfNone = 0xffffffff

// hton32 converts a host-order value to the network-order representation
// a little- or big-endian host stores in a __u32 field.
func hton32(v uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return binary.NativeEndian.Uint32(b[:])
}

func ntoh32(v uint32) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return binary.BigEndian.Uint32(b[:])
}
