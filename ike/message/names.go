package message

import "fmt"

// Names follow the IANA "Internet Key Exchange Version 2 (IKEv2)
// Parameters" registries, so that log lines can be searched for in the RFCs.
// Where the registry name is an identifier (IKE_SA_INIT, ID_FQDN,
// NO_PROPOSAL_CHOSEN) the Go constant is spelled the same; where it is
// prose ("Shared Key Message Integrity Code") the constant has a Go name and
// String returns the prose. Values without a name print as their type and
// number.

func name[T ~uint8 | ~uint16](v T, names map[T]string, typ string) string {
	if s, ok := names[v]; ok {
		return s
	}
	return fmt.Sprintf("%s(%d)", typ, uint16(v))
}

// ExchangeType is the Exchange Type field of the IKE header.
type ExchangeType uint8

const (
	IKE_SA_INIT        ExchangeType = 34
	IKE_AUTH           ExchangeType = 35
	CREATE_CHILD_SA    ExchangeType = 36
	INFORMATIONAL      ExchangeType = 37
	IKE_SESSION_RESUME ExchangeType = 38 // RFC 5723
	GSA_AUTH           ExchangeType = 39 // G-IKEv2
	GSA_REGISTRATION   ExchangeType = 40 // G-IKEv2
	GSA_REKEY          ExchangeType = 41 // G-IKEv2
	GSA_INBAND_REKEY   ExchangeType = 42 // G-IKEv2
	IKE_INTERMEDIATE   ExchangeType = 43 // RFC 9242
	IKE_FOLLOWUP_KE    ExchangeType = 44 // RFC 9370
)

var exchangeTypeNames = map[ExchangeType]string{
	IKE_SA_INIT:        "IKE_SA_INIT",
	IKE_AUTH:           "IKE_AUTH",
	CREATE_CHILD_SA:    "CREATE_CHILD_SA",
	INFORMATIONAL:      "INFORMATIONAL",
	IKE_SESSION_RESUME: "IKE_SESSION_RESUME",
	GSA_AUTH:           "GSA_AUTH",
	GSA_REGISTRATION:   "GSA_REGISTRATION",
	GSA_REKEY:          "GSA_REKEY",
	GSA_INBAND_REKEY:   "GSA_INBAND_REKEY",
	IKE_INTERMEDIATE:   "IKE_INTERMEDIATE",
	IKE_FOLLOWUP_KE:    "IKE_FOLLOWUP_KE",
}

func (t ExchangeType) String() string { return name(t, exchangeTypeNames, "ExchangeType") }

// PayloadType is the value of a Next Payload field.
type PayloadType uint8

const (
	PayloadNone    PayloadType = 0  // No Next Payload
	PayloadSA      PayloadType = 33 // Security Association
	PayloadKE      PayloadType = 34 // Key Exchange
	PayloadIDi     PayloadType = 35 // Identification - Initiator
	PayloadIDr     PayloadType = 36 // Identification - Responder
	PayloadCERT    PayloadType = 37 // Certificate
	PayloadCERTREQ PayloadType = 38 // Certificate Request
	PayloadAUTH    PayloadType = 39 // Authentication
	PayloadNonce   PayloadType = 40 // Nonce (Ni, Nr)
	PayloadN       PayloadType = 41 // Notify
	PayloadD       PayloadType = 42 // Delete
	PayloadV       PayloadType = 43 // Vendor ID
	PayloadTSi     PayloadType = 44 // Traffic Selector - Initiator
	PayloadTSr     PayloadType = 45 // Traffic Selector - Responder
	PayloadSK      PayloadType = 46 // Encrypted and Authenticated
	PayloadCP      PayloadType = 47 // Configuration
	PayloadEAP     PayloadType = 48 // Extensible Authentication
	PayloadGSPM    PayloadType = 49 // Generic Secure Password Method, RFC 6467
	PayloadIDg     PayloadType = 50 // Group Identification, G-IKEv2
	PayloadGSA     PayloadType = 51 // Group Security Association, G-IKEv2
	PayloadKD      PayloadType = 52 // Key Download, G-IKEv2
	PayloadSKF     PayloadType = 53 // Encrypted and Authenticated Fragment, RFC 7383
	PayloadPS      PayloadType = 54 // Puzzle Solution, RFC 8019
)

var payloadTypeNames = map[PayloadType]string{
	PayloadNone:    "NONE",
	PayloadSA:      "SA",
	PayloadKE:      "KE",
	PayloadIDi:     "IDi",
	PayloadIDr:     "IDr",
	PayloadCERT:    "CERT",
	PayloadCERTREQ: "CERTREQ",
	PayloadAUTH:    "AUTH",
	PayloadNonce:   "Nonce",
	PayloadN:       "N",
	PayloadD:       "D",
	PayloadV:       "V",
	PayloadTSi:     "TSi",
	PayloadTSr:     "TSr",
	PayloadSK:      "SK",
	PayloadCP:      "CP",
	PayloadEAP:     "EAP",
	PayloadGSPM:    "GSPM",
	PayloadIDg:     "IDg",
	PayloadGSA:     "GSA",
	PayloadKD:      "KD",
	PayloadSKF:     "SKF",
	PayloadPS:      "PS",
}

func (t PayloadType) String() string { return name(t, payloadTypeNames, "PayloadType") }

// ProtocolID is a Security Protocol Identifier (proposals, Notify, Delete).
type ProtocolID uint8

const (
	ProtocolNone               ProtocolID = 0 // no SPI in a Notify
	ProtocolIKE                ProtocolID = 1
	ProtocolAH                 ProtocolID = 2
	ProtocolESP                ProtocolID = 3
	ProtocolFCESPHeader        ProtocolID = 4 // RFC 4595
	ProtocolFCCTAuthentication ProtocolID = 5 // RFC 4595
)

var protocolIDNames = map[ProtocolID]string{
	ProtocolNone:               "NONE",
	ProtocolIKE:                "IKE",
	ProtocolAH:                 "AH",
	ProtocolESP:                "ESP",
	ProtocolFCESPHeader:        "FC_ESP_HEADER",
	ProtocolFCCTAuthentication: "FC_CT_AUTHENTICATION",
}

func (p ProtocolID) String() string { return name(p, protocolIDNames, "ProtocolID") }

// spiSize is the SPI length a proposal or Delete payload carries for
// protocol p, and whether this package knows it. IKE SPIs are 8 octets in a
// proposal for an IKE SA rekey and absent otherwise.
func spiSize(p ProtocolID) (int, bool) {
	switch p {
	case ProtocolIKE:
		return 8, true
	case ProtocolAH, ProtocolESP:
		return 4, true
	}
	return 0, false
}

// IDType is the ID Type of an Identification payload.
type IDType uint8

const (
	ID_IPV4_ADDR   IDType = 1
	ID_FQDN        IDType = 2
	ID_RFC822_ADDR IDType = 3
	ID_IPV6_ADDR   IDType = 5
	ID_DER_ASN1_DN IDType = 9
	ID_DER_ASN1_GN IDType = 10
	ID_KEY_ID      IDType = 11
	ID_FC_NAME     IDType = 12 // RFC 4595
	ID_NULL        IDType = 13 // RFC 7619
)

var idTypeNames = map[IDType]string{
	ID_IPV4_ADDR:   "ID_IPV4_ADDR",
	ID_FQDN:        "ID_FQDN",
	ID_RFC822_ADDR: "ID_RFC822_ADDR",
	ID_IPV6_ADDR:   "ID_IPV6_ADDR",
	ID_DER_ASN1_DN: "ID_DER_ASN1_DN",
	ID_DER_ASN1_GN: "ID_DER_ASN1_GN",
	ID_KEY_ID:      "ID_KEY_ID",
	ID_FC_NAME:     "ID_FC_NAME",
	ID_NULL:        "ID_NULL",
}

func (t IDType) String() string { return name(t, idTypeNames, "IDType") }

// AuthMethod is the Auth Method of an Authentication payload.
type AuthMethod uint8

const (
	AuthRSASignature          AuthMethod = 1
	AuthSharedKeyMIC          AuthMethod = 2
	AuthDSSSignature          AuthMethod = 3
	AuthECDSASHA256P256       AuthMethod = 9  // RFC 4754
	AuthECDSASHA384P384       AuthMethod = 10 // RFC 4754
	AuthECDSASHA512P521       AuthMethod = 11 // RFC 4754
	AuthGenericSecurePassword AuthMethod = 12 // RFC 6467
	AuthNULL                  AuthMethod = 13 // RFC 7619
	AuthDigitalSignature      AuthMethod = 14 // RFC 7427
)

var authMethodNames = map[AuthMethod]string{
	AuthRSASignature:          "RSA Digital Signature",
	AuthSharedKeyMIC:          "Shared Key Message Integrity Code",
	AuthDSSSignature:          "DSS Digital Signature",
	AuthECDSASHA256P256:       "ECDSA with SHA-256 on the P-256 curve",
	AuthECDSASHA384P384:       "ECDSA with SHA-384 on the P-384 curve",
	AuthECDSASHA512P521:       "ECDSA with SHA-512 on the P-521 curve",
	AuthGenericSecurePassword: "Generic Secure Password Authentication Method",
	AuthNULL:                  "NULL Authentication",
	AuthDigitalSignature:      "Digital Signature",
}

func (m AuthMethod) String() string { return name(m, authMethodNames, "AuthMethod") }

// CertEncoding is the Cert Encoding of CERT and CERTREQ payloads.
type CertEncoding uint8

const (
	CertPKCS7X509         CertEncoding = 1
	CertPGP               CertEncoding = 2
	CertDNSSignedKey      CertEncoding = 3
	CertX509Signature     CertEncoding = 4
	CertKerberosToken     CertEncoding = 6
	CertCRL               CertEncoding = 7
	CertARL               CertEncoding = 8
	CertSPKI              CertEncoding = 9
	CertX509Attribute     CertEncoding = 10
	CertRawRSAKey         CertEncoding = 11 // deprecated by RFC 7296
	CertHashURLX509       CertEncoding = 12
	CertHashURLX509Bundle CertEncoding = 13
	CertOCSPContent       CertEncoding = 14 // RFC 4806
	CertRawPublicKey      CertEncoding = 15 // RFC 7670
)

var certEncodingNames = map[CertEncoding]string{
	CertPKCS7X509:         "PKCS #7 wrapped X.509 certificate",
	CertPGP:               "PGP Certificate",
	CertDNSSignedKey:      "DNS Signed Key",
	CertX509Signature:     "X.509 Certificate - Signature",
	CertKerberosToken:     "Kerberos Token",
	CertCRL:               "Certificate Revocation List (CRL)",
	CertARL:               "Authority Revocation List (ARL)",
	CertSPKI:              "SPKI Certificate",
	CertX509Attribute:     "X.509 Certificate - Attribute",
	CertRawRSAKey:         "Raw RSA Key",
	CertHashURLX509:       "Hash and URL of X.509 certificate",
	CertHashURLX509Bundle: "Hash and URL of X.509 bundle",
	CertOCSPContent:       "OCSP Content",
	CertRawPublicKey:      "Raw Public Key",
}

func (e CertEncoding) String() string { return name(e, certEncodingNames, "CertEncoding") }

// TSType is the TS Type of a traffic selector.
type TSType uint8

const (
	TS_IPV4_ADDR_RANGE TSType = 7
	TS_IPV6_ADDR_RANGE TSType = 8
	TS_FC_ADDR_RANGE   TSType = 9  // RFC 4595
	TS_SECLABEL        TSType = 10 // RFC 9478
)

var tsTypeNames = map[TSType]string{
	TS_IPV4_ADDR_RANGE: "TS_IPV4_ADDR_RANGE",
	TS_IPV6_ADDR_RANGE: "TS_IPV6_ADDR_RANGE",
	TS_FC_ADDR_RANGE:   "TS_FC_ADDR_RANGE",
	TS_SECLABEL:        "TS_SECLABEL",
}

func (t TSType) String() string { return name(t, tsTypeNames, "TSType") }

// CFGType is the CFG Type of a Configuration payload.
type CFGType uint8

const (
	CFG_REQUEST CFGType = 1
	CFG_REPLY   CFGType = 2
	CFG_SET     CFGType = 3
	CFG_ACK     CFGType = 4
)

var cfgTypeNames = map[CFGType]string{
	CFG_REQUEST: "CFG_REQUEST",
	CFG_REPLY:   "CFG_REPLY",
	CFG_SET:     "CFG_SET",
	CFG_ACK:     "CFG_ACK",
}

func (t CFGType) String() string { return name(t, cfgTypeNames, "CFGType") }

// CPAttributeType is the 15-bit Attribute Type of a configuration
// attribute.
type CPAttributeType uint16

const (
	INTERNAL_IP4_ADDRESS              CPAttributeType = 1
	INTERNAL_IP4_NETMASK              CPAttributeType = 2
	INTERNAL_IP4_DNS                  CPAttributeType = 3
	INTERNAL_IP4_NBNS                 CPAttributeType = 4
	INTERNAL_IP4_DHCP                 CPAttributeType = 6
	APPLICATION_VERSION               CPAttributeType = 7
	INTERNAL_IP6_ADDRESS              CPAttributeType = 8
	INTERNAL_IP6_DNS                  CPAttributeType = 10
	INTERNAL_IP6_DHCP                 CPAttributeType = 12
	INTERNAL_IP4_SUBNET               CPAttributeType = 13
	SUPPORTED_ATTRIBUTES              CPAttributeType = 14
	INTERNAL_IP6_SUBNET               CPAttributeType = 15
	MIP6_HOME_PREFIX                  CPAttributeType = 16 // RFC 5026
	INTERNAL_IP6_LINK                 CPAttributeType = 17 // RFC 5739
	INTERNAL_IP6_PREFIX               CPAttributeType = 18 // RFC 5739
	HOME_AGENT_ADDRESS                CPAttributeType = 19 // RFC 5555
	P_CSCF_IP4_ADDRESS                CPAttributeType = 20 // RFC 7651
	P_CSCF_IP6_ADDRESS                CPAttributeType = 21 // RFC 7651
	FTT_KAT                           CPAttributeType = 22 // 3GPP TS 24.302
	EXTERNAL_SOURCE_IP4_NAT_INFO      CPAttributeType = 23 // 3GPP TS 24.302
	TIMEOUT_PERIOD_FOR_LIVENESS_CHECK CPAttributeType = 24 // 3GPP TS 24.302
	INTERNAL_DNS_DOMAIN               CPAttributeType = 25 // RFC 8598
	INTERNAL_DNSSEC_TA                CPAttributeType = 26 // RFC 8598
)

var cpAttributeTypeNames = map[CPAttributeType]string{
	INTERNAL_IP4_ADDRESS:              "INTERNAL_IP4_ADDRESS",
	INTERNAL_IP4_NETMASK:              "INTERNAL_IP4_NETMASK",
	INTERNAL_IP4_DNS:                  "INTERNAL_IP4_DNS",
	INTERNAL_IP4_NBNS:                 "INTERNAL_IP4_NBNS",
	INTERNAL_IP4_DHCP:                 "INTERNAL_IP4_DHCP",
	APPLICATION_VERSION:               "APPLICATION_VERSION",
	INTERNAL_IP6_ADDRESS:              "INTERNAL_IP6_ADDRESS",
	INTERNAL_IP6_DNS:                  "INTERNAL_IP6_DNS",
	INTERNAL_IP6_DHCP:                 "INTERNAL_IP6_DHCP",
	INTERNAL_IP4_SUBNET:               "INTERNAL_IP4_SUBNET",
	SUPPORTED_ATTRIBUTES:              "SUPPORTED_ATTRIBUTES",
	INTERNAL_IP6_SUBNET:               "INTERNAL_IP6_SUBNET",
	MIP6_HOME_PREFIX:                  "MIP6_HOME_PREFIX",
	INTERNAL_IP6_LINK:                 "INTERNAL_IP6_LINK",
	INTERNAL_IP6_PREFIX:               "INTERNAL_IP6_PREFIX",
	HOME_AGENT_ADDRESS:                "HOME_AGENT_ADDRESS",
	P_CSCF_IP4_ADDRESS:                "P_CSCF_IP4_ADDRESS",
	P_CSCF_IP6_ADDRESS:                "P_CSCF_IP6_ADDRESS",
	FTT_KAT:                           "FTT_KAT",
	EXTERNAL_SOURCE_IP4_NAT_INFO:      "EXTERNAL_SOURCE_IP4_NAT_INFO",
	TIMEOUT_PERIOD_FOR_LIVENESS_CHECK: "TIMEOUT_PERIOD_FOR_LIVENESS_CHECK",
	INTERNAL_DNS_DOMAIN:               "INTERNAL_DNS_DOMAIN",
	INTERNAL_DNSSEC_TA:                "INTERNAL_DNSSEC_TA",
}

func (t CPAttributeType) String() string { return name(t, cpAttributeTypeNames, "CPAttributeType") }
