package eap

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2-02) carries the packets
// of MS-CHAPv2 (RFC 2759) in EAP. The Type-Data of Challenge, Response,
// Success Request and Failure Request starts with a four-octet header:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    OpCode     |  MS-CHAPv2-ID |           MS-Length           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// MS-Length is the EAP Length minus 5, which is the length of the
// Type-Data. The peer's Success Response and Failure Response (its
// acknowledgements) are the OpCode octet alone.
//
//	Challenge (1):  Value-Size=16 | Challenge(16) | Name
//	Response (2):   Value-Size=49 | Peer-Challenge(16) | Reserved(8) |
//	                NT-Response(24) | Flags(1) | Name
//	Success (3):    "S=<40 hex digits> M=<message>"
//	Failure (4):    "E=eeeeeeeeee R=r C=<32 hex digits> V=vvvvvvvvvv M=<message>"
//
// Change-Password (7) is refused.
const (
	opChallenge      = 1
	opResponse       = 2
	opSuccess        = 3
	opFailure        = 4
	opChangePassword = 7

	mschapHeaderLen     = 4
	mschapResponseValue = 49 // Value-Size of a Response
	// errAuthenticationFailure is E=691, ERROR_AUTHENTICATION_FAILURE,
	// the one error code this server sends: a wrong password and an
	// unknown user look the same on the wire.
	errAuthenticationFailure = 691
)

// mschapPacket is the decoded Type-Data of an EAP-MSCHAPv2 packet. Short
// is set for the one-octet acknowledgements.
type mschapPacket struct {
	OpCode uint8
	ID     uint8 // MS-CHAPv2-ID
	Body   []byte
	Short  bool
}

func parseMSCHAP(data []byte) (mschapPacket, error) {
	if len(data) == 0 {
		return mschapPacket{}, fmt.Errorf("EAP-MSCHAPv2 without OpCode: %w", ErrTruncated)
	}
	p := mschapPacket{OpCode: data[0]}
	if len(data) == 1 {
		if p.OpCode != opSuccess && p.OpCode != opFailure {
			return mschapPacket{}, fmt.Errorf("EAP-MSCHAPv2 OpCode %d without header: %w", p.OpCode, ErrTruncated)
		}
		p.Short = true
		return p, nil
	}
	if len(data) < mschapHeaderLen {
		return mschapPacket{}, fmt.Errorf("EAP-MSCHAPv2 header of %d octets: %w", len(data), ErrTruncated)
	}
	p.ID = data[1]
	if n := int(binary.BigEndian.Uint16(data[2:4])); n != len(data) {
		return mschapPacket{}, fmt.Errorf("EAP-MSCHAPv2 MS-Length %d, %d octets: %w", n, len(data), ErrBadLength)
	}
	p.Body = data[mschapHeaderLen:]
	return p, nil
}

func appendMSCHAP(op, id uint8, body ...[]byte) []byte {
	n := mschapHeaderLen
	for _, b := range body {
		n += len(b)
	}
	out := make([]byte, 0, n)
	out = append(out, op, id)
	out = binary.BigEndian.AppendUint16(out, uint16(n))
	for _, b := range body {
		out = append(out, b...)
	}
	return out
}

// parseChallenge decodes the body of a Challenge.
func parseChallenge(body []byte) (challenge [challengeLen]byte, name []byte, err error) {
	if len(body) < 1+challengeLen {
		return challenge, nil, fmt.Errorf("EAP-MSCHAPv2 challenge of %d octets: %w", len(body), ErrTruncated)
	}
	if body[0] != challengeLen {
		return challenge, nil, fmt.Errorf("EAP-MSCHAPv2 challenge Value-Size %d: %w", body[0], ErrMalformed)
	}
	copy(challenge[:], body[1:1+challengeLen])
	return challenge, body[1+challengeLen:], nil
}

// parseResponse decodes the body of a Response.
func parseResponse(body []byte) (peerChallenge [challengeLen]byte, nt [ntResponseLen]byte, name []byte, err error) {
	if len(body) < 1+mschapResponseValue {
		return peerChallenge, nt, nil, fmt.Errorf("EAP-MSCHAPv2 response of %d octets: %w", len(body), ErrTruncated)
	}
	if body[0] != mschapResponseValue {
		return peerChallenge, nt, nil, fmt.Errorf("EAP-MSCHAPv2 response Value-Size %d: %w", body[0], ErrMalformed)
	}
	v := body[1 : 1+mschapResponseValue]
	copy(peerChallenge[:], v[0:16])
	copy(nt[:], v[24:48]) // after 8 reserved octets; Flags (v[48]) are ignored
	return peerChallenge, nt, body[1+mschapResponseValue:], nil
}

// messageFields splits the text of a Success or Failure Request into its
// "X=value" fields. The message M= runs to the end and may hold spaces.
// Trailing NULs are dropped: charon's server sends one.
func messageFields(body []byte) map[string]string {
	s := string(bytes.TrimRight(body, "\x00"))
	f := make(map[string]string)
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, "M=") {
			f["M"] = s[2:]
			break
		}
		tok, rest, _ := strings.Cut(s, " ")
		if k, v, ok := strings.Cut(tok, "="); ok && len(k) == 1 {
			if _, dup := f[k]; !dup {
				f[k] = v
			}
		}
		s = rest
	}
	return f
}

// mschapError names the MS-CHAP error codes of RFC 2759 section 6.
func mschapError(code int) string {
	switch code {
	case 646:
		return "ERROR_RESTRICTED_LOGON_HOURS"
	case 647:
		return "ERROR_ACCT_DISABLED"
	case 648:
		return "ERROR_PASSWD_EXPIRED"
	case 649:
		return "ERROR_NO_DIALIN_PERMISSION"
	case 691:
		return "ERROR_AUTHENTICATION_FAILURE"
	case 709:
		return "ERROR_CHANGING_PASSWORD"
	}
	return "error " + strconv.Itoa(code)
}

func authResponseText(ar *[sha1.Size]byte) []byte {
	b := make([]byte, 0, 2+authResponseHexLen)
	b = append(b, "S="...)
	return append(b, strings.ToUpper(hex.EncodeToString(ar[:]))...)
}
