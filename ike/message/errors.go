package message

import (
	"errors"
	"fmt"
)

// Decoding and encoding errors. Each is returned wrapped with context
// ("decode SA payload: proposal 2: ..."); test with errors.Is.
var (
	// ErrTruncated: a fixed field or a length points past the end of the
	// bytes present.
	ErrTruncated = errors.New("truncated")
	// ErrBadLength: a length field is smaller than its fixed part, or
	// disagrees with the bytes it should describe (trailing bytes,
	// IKE header length different from the message length).
	ErrBadLength = errors.New("bad length")
	// ErrMalformed: a field holds a value the format forbids (count that
	// disagrees with the substructures, SPI size that does not fit the
	// protocol, wrong substructure type, address of the wrong family).
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: a value does not fit its wire field, or input exceeds a
	// limit of this package.
	ErrTooLarge = errors.New("too large")
	// ErrInvalidMajorVersion: the IKE header's major version is not 2. The
	// caller may answer INVALID_MAJOR_VERSION (RFC 7296 section 2.5).
	ErrInvalidMajorVersion = errors.New("invalid major version")
	// ErrPayloadPlacement: SK or SKF is not the last payload, an encrypted
	// payload is nested in another, or a message expected to be encrypted
	// is not.
	ErrPayloadPlacement = errors.New("payload placement")
	// ErrProtector: the Protector returned a body whose length differs
	// from what its SealedLen promised.
	ErrProtector = errors.New("protector broke its contract")
	// ErrVerifiedContent marks an error in the inner payloads of an SK
	// payload, or of a message reassembled from SKF fragments, found after
	// the integrity check passed: the peer really sent what cannot be
	// decoded, and RFC 7296 section 2.21 lets the receiver answer it.
	// Every other error of UnmarshalEncrypted, UnmarshalFragment and
	// Reassembler.Add concerns octets nobody vouched for (framing in front
	// of the integrity check, the check itself) or the bookkeeping of
	// reassembly, and must change nothing of the IKE SA.
	ErrVerifiedContent = errors.New("verified content")
)

// UnsupportedCriticalPayloadError reports a payload of a type this package
// does not know whose critical bit is set. RFC 7296 section 2.5 asks the
// receiver to reject the whole message and answer with an
// UNSUPPORTED_CRITICAL_PAYLOAD notification whose data is Type.
type UnsupportedCriticalPayloadError struct {
	Type PayloadType
}

func (e *UnsupportedCriticalPayloadError) Error() string {
	return fmt.Sprintf("unsupported critical payload %d", uint8(e.Type))
}
