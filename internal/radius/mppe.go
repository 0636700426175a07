package radius

import (
	"errors"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/vendors/microsoft"
)

// mskMinLen is what the MSK is zero-padded to. RFC 3748 §7.10 makes an
// MSK at least 64 bytes; an EAP method relayed by RADIUS hands over only
// MS-MPPE-Recv-Key and MS-MPPE-Send-Key (32 bytes each for EAP-TLS, 16
// each for EAP-MSCHAPv2).
const mskMinLen = 64

// ErrNoMPPEKeys is the MSKError of an Access-Accept without MPPE keys, as
// after EAP-MD5, which derives no key.
var ErrNoMPPEKeys = errors.New("no MS-MPPE-Recv-Key and MS-MPPE-Send-Key")

// msk derives the MSK from an Access-Accept the way charon's eap-radius
// plugin does (strongSwan src/libradius/radius_socket.c, decrypt_msk):
// MS-MPPE-Recv-Key || MS-MPPE-Send-Key, each decrypted per RFC 2548
// §2.4.2/§2.4.3 with the shared secret and the Access-Request's
// authenticator, then zero bytes appended when the two are shorter than
// 64 bytes together; longer keys are not truncated. Both keys must be
// there, as charon requires, so that a charon peer derives the same AUTH.
func msk(accept, request *radius.Packet) ([]byte, error) {
	recv, errRecv := microsoft.MSMPPERecvKey_Lookup(accept, request)
	send, errSend := microsoft.MSMPPESendKey_Lookup(accept, request)
	if errors.Is(errRecv, radius.ErrNoAttribute) && errors.Is(errSend, radius.ErrNoAttribute) {
		return nil, ErrNoMPPEKeys
	}
	if errors.Is(errRecv, radius.ErrNoAttribute) {
		return nil, errors.New("MS-MPPE-Recv-Key missing beside MS-MPPE-Send-Key")
	}
	if errors.Is(errSend, radius.ErrNoAttribute) {
		return nil, errors.New("MS-MPPE-Send-Key missing beside MS-MPPE-Recv-Key")
	}
	if errRecv != nil {
		return nil, fmt.Errorf("MS-MPPE-Recv-Key: %w", errRecv)
	}
	if errSend != nil {
		return nil, fmt.Errorf("MS-MPPE-Send-Key: %w", errSend)
	}
	out := make([]byte, 0, max(mskMinLen, len(recv)+len(send)))
	out = append(out, recv...)
	out = append(out, send...)
	for len(out) < mskMinLen {
		out = append(out, 0)
	}
	clear(recv)
	clear(send)
	return out, nil
}
