package message

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// IntAuth_A | IntAuth_P of RFC 9242 section 3.3.2 for an IKE_INTERMEDIATE
// request with one KE payload: the IKE header and SK's generic header with
// the lengths of the unencrypted message, then the inner payload.
func TestIntAuthOctets(t *testing.T) {
	m := &Message{
		Header: Header{InitiatorSPI: 0x0102030405060708, ResponderSPI: 0x1112131415161718,
			ExchangeType: IKE_INTERMEDIATE, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{&KeyExchange{Group: 36, Data: []byte{0xaa, 0xbb}}},
	}
	got, err := IntAuthOctets(m)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("" +
		"0102030405060708" + "1112131415161718" + // SPIs
		"2e" + "20" + "2b" + "08" + "00000001" + // SK, 2.0, IKE_INTERMEDIATE, I, MID 1
		"0000002a" + // 28 + 4 + 10
		"22" + "00" + "000e" + // SK: next KE, length 4 + 10
		"00" + "00" + "000a" + "0024" + "0000" + "aabb") // KE: group 36
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	// Fragmented or not, sent or received: the octets come from the
	// header and payloads alone.
	m.Header.NextPayload = PayloadSKF
	again, _ := IntAuthOctets(m)
	if !bytes.Equal(again, want) {
		t.Errorf("depends on the received Next Payload: %x", again)
	}
}
