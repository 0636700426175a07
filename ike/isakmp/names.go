package isakmp

import "strconv"

func lookup[K ~uint8 | ~uint16 | ~uint32](table map[K]string, v K, prefix string) string {
	if s, ok := table[v]; ok {
		return s
	}
	return prefix + strconv.FormatUint(uint64(v), 10)
}

// PayloadType is the Next Payload field (RFC 2408 section 3.1, RFC 3947,
// and the private-use numbers strongSwan and Cisco use).
type PayloadType uint8

const (
	PayloadNone      PayloadType = 0
	PayloadSA        PayloadType = 1
	PayloadProposal  PayloadType = 2
	PayloadTransform PayloadType = 3
	PayloadKE        PayloadType = 4
	PayloadID        PayloadType = 5
	PayloadCert      PayloadType = 6
	PayloadCertReq   PayloadType = 7
	PayloadHash      PayloadType = 8
	PayloadSig       PayloadType = 9
	PayloadNonce     PayloadType = 10
	PayloadNotify    PayloadType = 11
	PayloadDelete    PayloadType = 12
	PayloadVendorID  PayloadType = 13
	// PayloadAttribute is the Attribute payload of the Transaction
	// exchange (draft-dukes-ike-mode-cfg-02).
	PayloadAttribute PayloadType = 14
	PayloadNATD      PayloadType = 20 // RFC 3947
	PayloadNATOA     PayloadType = 21 // RFC 3947
	PayloadNATDDraft PayloadType = 130
	// PayloadNATOADraft is the NAT-OA of the NAT-T drafts.
	PayloadNATOADraft PayloadType = 131
	// PayloadFragment is the IKE fragment of the Cisco/strongSwan
	// fragmentation extension.
	PayloadFragment PayloadType = 132
)

// Names as charon prints them in message summaries ("SA", "KE", "No").
var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadProposal: "PROP", PayloadTransform: "TRANS",
	PayloadKE: "KE", PayloadID: "ID", PayloadCert: "CERT", PayloadCertReq: "CERTREQ",
	PayloadHash: "HASH", PayloadSig: "SIG", PayloadNonce: "No", PayloadNotify: "N",
	PayloadDelete: "D", PayloadVendorID: "V", PayloadAttribute: "CP", PayloadNATD: "NAT-D", PayloadNATOA: "NAT-OA",
	PayloadNATDDraft: "NAT-D", PayloadNATOADraft: "NAT-OA", PayloadFragment: "FRAG",
}

func (t PayloadType) String() string { return lookup(payloadNames, t, "PAYLOAD_") }

// ExchangeType is the Exchange Type field (RFC 2408 section 3.1, RFC 2409).
type ExchangeType uint8

const (
	ExchangeBase          ExchangeType = 1
	ExchangeMain          ExchangeType = 2 // Identity Protection
	ExchangeAuthOnly      ExchangeType = 3
	ExchangeAggressive    ExchangeType = 4
	ExchangeInformational ExchangeType = 5
	ExchangeTransaction   ExchangeType = 6 // Mode Config
	ExchangeQuick         ExchangeType = 32
	ExchangeNewGroup      ExchangeType = 33
)

var exchangeNames = map[ExchangeType]string{
	ExchangeBase: "BASE", ExchangeMain: "ID_PROT", ExchangeAuthOnly: "AUTH_ONLY",
	ExchangeAggressive: "AGGRESSIVE", ExchangeInformational: "INFORMATIONAL_V1",
	ExchangeTransaction: "TRANSACTION", ExchangeQuick: "QUICK_MODE", ExchangeNewGroup: "NEW_GROUP",
}

func (t ExchangeType) String() string { return lookup(exchangeNames, t, "EXCHANGE_") }

// Flags of the ISAKMP header.
type Flags uint8

const (
	FlagEncryption Flags = 0x01 // E: the payloads are encrypted
	FlagCommit     Flags = 0x02 // C: commit bit (RFC 2408 section 3.1)
	FlagAuthOnly   Flags = 0x04 // A: authentication only
)

func (f Flags) String() string {
	s := ""
	for _, x := range []struct {
		f Flags
		n string
	}{{FlagEncryption, "E"}, {FlagCommit, "C"}, {FlagAuthOnly, "A"}} {
		if f&x.f != 0 {
			if s != "" {
				s += "|"
			}
			s += x.n
		}
	}
	return s
}

// DOI is a Domain of Interpretation.
type DOI uint32

const (
	DOIISAKMP DOI = 0
	DOIIPsec  DOI = 1 // RFC 2407
)

func (d DOI) String() string { return lookup(map[DOI]string{0: "ISAKMP", 1: "IPSEC"}, d, "DOI_") }

// Situation bits of the IPsec DOI (RFC 2407 section 4.2).
const SituationIdentityOnly uint32 = 1

// ProtocolID names the protocol of a proposal, notification or delete
// (RFC 2407 section 4.4.1).
type ProtocolID uint8

const (
	ProtoISAKMP ProtocolID = 1
	ProtoAH     ProtocolID = 2
	ProtoESP    ProtocolID = 3
	ProtoIPComp ProtocolID = 4
)

func (p ProtocolID) String() string {
	return lookup(map[ProtocolID]string{1: "ISAKMP", 2: "AH", 3: "ESP", 4: "IPCOMP"}, p, "PROTO_")
}

// Transform IDs: KEY_IKE for ISAKMP (RFC 2407 section 4.4.2), ESP
// transforms (section 4.4.4, RFC 3602, RFC 4106).
const (
	TransformKeyIKE uint8 = 1

	ESP3DES     uint8 = 3
	ESPNull     uint8 = 11
	ESPAES      uint8 = 12
	ESPAESCTR   uint8 = 13
	ESPAESGCM8  uint8 = 18
	ESPAESGCM12 uint8 = 19
	ESPAESGCM16 uint8 = 20
)

// IDType is the type of an ID payload (RFC 2407 section 4.6.2.1).
type IDType uint8

const (
	IDIPv4Addr       IDType = 1
	IDFQDN           IDType = 2
	IDUserFQDN       IDType = 3
	IDIPv4AddrSubnet IDType = 4
	IDIPv6Addr       IDType = 5
	IDIPv6AddrSubnet IDType = 6
	IDIPv4AddrRange  IDType = 7
	IDIPv6AddrRange  IDType = 8
	IDDERASN1DN      IDType = 9
	IDDERASN1GN      IDType = 10
	IDKeyID          IDType = 11
)

var idNames = map[IDType]string{
	1: "ID_IPV4_ADDR", 2: "ID_FQDN", 3: "ID_USER_FQDN", 4: "ID_IPV4_ADDR_SUBNET", 5: "ID_IPV6_ADDR",
	6: "ID_IPV6_ADDR_SUBNET", 7: "ID_IPV4_ADDR_RANGE", 8: "ID_IPV6_ADDR_RANGE", 9: "ID_DER_ASN1_DN",
	10: "ID_DER_ASN1_GN", 11: "ID_KEY_ID",
}

func (t IDType) String() string { return lookup(idNames, t, "ID_") }

// CertEncoding of CERT and CERTREQ payloads (RFC 2408 section 3.9).
type CertEncoding uint8

const (
	CertX509Signature CertEncoding = 4
	CertCRL           CertEncoding = 7
)

func (c CertEncoding) String() string {
	return lookup(map[CertEncoding]string{4: "X509_SIGNATURE", 7: "CRL"}, c, "CERT_")
}

// NotifyType is the Notify Message Type (RFC 2408 section 3.14.1, RFC 2407
// section 4.6.3, RFC 3706).
type NotifyType uint16

const (
	InvalidPayloadType      NotifyType = 1
	DOINotSupported         NotifyType = 2
	SituationNotSupported   NotifyType = 3
	InvalidCookie           NotifyType = 4
	InvalidMajorVersion     NotifyType = 5
	InvalidMinorVersion     NotifyType = 6
	InvalidExchangeType     NotifyType = 7
	InvalidFlags            NotifyType = 8
	InvalidMessageID        NotifyType = 9
	InvalidProtocolID       NotifyType = 10
	InvalidSPI              NotifyType = 11
	InvalidTransformID      NotifyType = 12
	AttributesNotSupported  NotifyType = 13
	NoProposalChosen        NotifyType = 14
	BadProposalSyntax       NotifyType = 15
	PayloadMalformed        NotifyType = 16
	InvalidKeyInformation   NotifyType = 17
	InvalidIDInformation    NotifyType = 18
	InvalidCertEncoding     NotifyType = 19
	InvalidCertificate      NotifyType = 20
	CertTypeUnsupported     NotifyType = 21
	InvalidCertAuthority    NotifyType = 22
	InvalidHashInformation  NotifyType = 23
	AuthenticationFailed    NotifyType = 24
	InvalidSignature        NotifyType = 25
	AddressNotification     NotifyType = 26
	NotifySALifetime        NotifyType = 27
	CertificateUnavailable  NotifyType = 28
	UnsupportedExchangeType NotifyType = 29
	UnequalPayloadLengths   NotifyType = 30
	Connected               NotifyType = 16384
	ResponderLifetime       NotifyType = 24576
	ReplayStatus            NotifyType = 24577
	InitialContact          NotifyType = 24578
	DPDRUThere              NotifyType = 36136 // RFC 3706
	DPDRUThereAck           NotifyType = 36137
)

// Names as charon abbreviates them in message summaries.
var notifyNames = map[NotifyType]string{
	1: "INVALID_PAYLOAD_TYPE", 2: "DOI_NOT_SUPPORTED", 3: "SITUATION_NOT_SUPPORTED", 4: "INVALID_COOKIE",
	5: "INVALID_MAJOR_VERSION", 6: "INVALID_MINOR_VERSION", 7: "INVALID_EXCHANGE_TYPE", 8: "INVALID_FLAGS",
	9: "INVALID_MESSAGE_ID", 10: "INVALID_PROTOCOL_ID", 11: "INVALID_SPI", 12: "INVALID_TRANSFORM_ID",
	13: "ATTRIBUTES_NOT_SUPPORTED", 14: "NO_PROPOSAL_CHOSEN", 15: "BAD_PROPOSAL_SYNTAX", 16: "PAYLOAD_MALFORMED",
	17: "INVALID_KEY_INFORMATION", 18: "INVALID_ID_INFORMATION", 19: "INVALID_CERT_ENCODING",
	20: "INVALID_CERTIFICATE", 21: "CERT_TYPE_UNSUPPORTED", 22: "INVALID_CERT_AUTHORITY",
	23: "INVALID_HASH_INFORMATION", 24: "AUTHENTICATION_FAILED", 25: "INVALID_SIGNATURE",
	26: "ADDRESS_NOTIFICATION", 27: "NOTIFY_SA_LIFETIME", 28: "CERTIFICATE_UNAVAILABLE",
	29: "UNSUPPORTED_EXCHANGE_TYPE", 30: "UNEQUAL_PAYLOAD_LENGTHS", 16384: "CONNECTED",
	24576: "RESPONDER_LIFETIME", 24577: "REPLAY_STATUS", 24578: "INITIAL_CONTACT",
	36136: "DPD_R_U_THERE", 36137: "DPD_R_U_THERE_ACK",
}

func (t NotifyType) String() string { return lookup(notifyNames, t, "NOTIFY_") }

// Short is charon's abbreviation in summaries ("N(NO_PROP)").
func (t NotifyType) Short() string {
	switch t {
	case NoProposalChosen:
		return "NO_PROP"
	case InvalidIDInformation:
		return "INVAL_ID"
	case AuthenticationFailed:
		return "AUTH_FAILED"
	case InitialContact:
		return "INITIAL_CONTACT"
	case DPDRUThere:
		return "DPD"
	case DPDRUThereAck:
		return "DPD_ACK"
	case PayloadMalformed:
		return "PLD_MAL"
	case InvalidHashInformation:
		return "INVAL_HASH"
	case ResponderLifetime:
		return "RESP_LIFE"
	}
	return t.String()
}
