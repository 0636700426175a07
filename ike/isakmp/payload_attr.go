package isakmp

import (
	"encoding/binary"
	"fmt"
)

// ConfigAttributes is the Attribute payload of the Transaction exchange
// (draft-dukes-ike-mode-cfg-02 section 3.2), which carries Mode Config
// and XAuth (draft-beaulieu-ike-xauth-02) attributes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!     Type      !   RESERVED    !           Identifier          !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                           Attributes                          ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The attributes have the data attribute format of SA transforms (TV or
// TLV, Attribute); their types are ModeCfgAttr.
type ConfigAttributes struct {
	CfgType    CfgType
	Identifier uint16 // a reply or acknowledgement repeats its request's
	Attributes []Attribute
}

// CfgType is the Attribute payload's Type.
type CfgType uint8

const (
	CfgRequest CfgType = 1 // ISAKMP_CFG_REQUEST
	CfgReply   CfgType = 2 // ISAKMP_CFG_REPLY
	CfgSet     CfgType = 3 // ISAKMP_CFG_SET
	CfgAck     CfgType = 4 // ISAKMP_CFG_ACK
)

func (t CfgType) String() string {
	return lookup(map[CfgType]string{1: "CFG_REQUEST", 2: "CFG_REPLY", 3: "CFG_SET", 4: "CFG_ACK"}, t, "CFG_")
}

func (*ConfigAttributes) Type() PayloadType { return PayloadAttribute }

func (p *ConfigAttributes) Body() ([]byte, error) {
	b := []byte{byte(p.CfgType), 0}
	b = binary.BigEndian.AppendUint16(b, p.Identifier)
	for _, a := range p.Attributes {
		var err error
		if b, err = a.append(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func decodeConfigAttributes(b []byte) (*ConfigAttributes, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("attribute payload header: %w", ErrTruncated)
	}
	attrs, err := parseAttributes(b[4:])
	if err != nil {
		return nil, err
	}
	return &ConfigAttributes{CfgType: CfgType(b[0]), Identifier: binary.BigEndian.Uint16(b[2:]), Attributes: attrs}, nil
}

// Find returns the first attribute of type t.
func (p *ConfigAttributes) Find(t ModeCfgAttr) (Attribute, bool) {
	for _, a := range p.Attributes {
		if a.Type == uint16(t) {
			return a, true
		}
	}
	return Attribute{}, false
}

// ModeCfgAttr is a Mode Config or XAuth attribute type
// (draft-dukes-ike-mode-cfg-02 section 3.2, draft-beaulieu-ike-xauth-02
// section 6.2, and the Cisco Unity numbers strongSwan's unity plugin
// uses).
type ModeCfgAttr uint16

const (
	InternalIP4Address ModeCfgAttr = 1
	InternalIP4Netmask ModeCfgAttr = 2
	InternalIP4DNS     ModeCfgAttr = 3
	InternalIP4NBNS    ModeCfgAttr = 4
	InternalAddrExpiry ModeCfgAttr = 5
	InternalIP4DHCP    ModeCfgAttr = 6
	ApplicationVersion ModeCfgAttr = 7
	InternalIP6Address ModeCfgAttr = 8
	InternalIP6Netmask ModeCfgAttr = 9
	InternalIP6DNS     ModeCfgAttr = 10
	InternalIP6NBNS    ModeCfgAttr = 11
	InternalIP6DHCP    ModeCfgAttr = 12
	InternalIP4Subnet  ModeCfgAttr = 13
	SupportedAttrs     ModeCfgAttr = 14
	InternalIP6Subnet  ModeCfgAttr = 15
	InternalDNSDomain  ModeCfgAttr = 25

	XAuthType         ModeCfgAttr = 16520 // TV
	XAuthUserName     ModeCfgAttr = 16521
	XAuthUserPassword ModeCfgAttr = 16522
	XAuthPasscode     ModeCfgAttr = 16523
	XAuthMessage      ModeCfgAttr = 16524
	XAuthChallenge    ModeCfgAttr = 16525
	XAuthDomain       ModeCfgAttr = 16526
	XAuthStatus       ModeCfgAttr = 16527 // TV: 1 OK, 0 FAIL
	XAuthNextPin      ModeCfgAttr = 16528
	XAuthAnswer       ModeCfgAttr = 16529

	UnityBanner        ModeCfgAttr = 28672
	UnitySavePasswd    ModeCfgAttr = 28673
	UnityDefDomain     ModeCfgAttr = 28674
	UnitySplitDNSName  ModeCfgAttr = 28675
	UnitySplitInclude  ModeCfgAttr = 28676
	UnityNATTPort      ModeCfgAttr = 28677
	UnityLocalLAN      ModeCfgAttr = 28678
	UnityPFS           ModeCfgAttr = 28679
	UnityFWType        ModeCfgAttr = 28680
	UnityBackupServers ModeCfgAttr = 28681
	UnityDDNSHostname  ModeCfgAttr = 28682
)

var modeCfgAttrNames = map[ModeCfgAttr]string{
	1: "INTERNAL_IP4_ADDRESS", 2: "INTERNAL_IP4_NETMASK", 3: "INTERNAL_IP4_DNS", 4: "INTERNAL_IP4_NBNS",
	5: "INTERNAL_ADDRESS_EXPIRY", 6: "INTERNAL_IP4_DHCP", 7: "APPLICATION_VERSION", 8: "INTERNAL_IP6_ADDRESS",
	9: "INTERNAL_IP6_NETMASK", 10: "INTERNAL_IP6_DNS", 11: "INTERNAL_IP6_NBNS", 12: "INTERNAL_IP6_DHCP",
	13: "INTERNAL_IP4_SUBNET", 14: "SUPPORTED_ATTRIBUTES", 15: "INTERNAL_IP6_SUBNET", 25: "INTERNAL_DNS_DOMAIN",
	16520: "XAUTH_TYPE", 16521: "XAUTH_USER_NAME", 16522: "XAUTH_USER_PASSWORD", 16523: "XAUTH_PASSCODE",
	16524: "XAUTH_MESSAGE", 16525: "XAUTH_CHALLENGE", 16526: "XAUTH_DOMAIN", 16527: "XAUTH_STATUS",
	16528: "XAUTH_NEXT_PIN", 16529: "XAUTH_ANSWER",
	28672: "UNITY_BANNER", 28673: "UNITY_SAVE_PASSWD", 28674: "UNITY_DEF_DOMAIN", 28675: "UNITY_SPLITDNS_NAME",
	28676: "UNITY_SPLIT_INCLUDE", 28677: "UNITY_NATT_PORT", 28678: "UNITY_LOCAL_LAN", 28679: "UNITY_PFS",
	28680: "UNITY_FW_TYPE", 28681: "UNITY_BACKUP_SERVERS", 28682: "UNITY_DDNS_HOSTNAME",
}

func (a ModeCfgAttr) String() string { return lookup(modeCfgAttrNames, a, "ATTR_") }

// XAuth status values (XAUTH_STATUS).
const (
	XAuthStatusFail uint16 = 0
	XAuthStatusOK   uint16 = 1
)

// ModeCfgAttribute returns a variable (TLV) attribute: Mode Config and
// XAuth attributes are, except XAUTH_TYPE and XAUTH_STATUS.
func ModeCfgAttribute(t ModeCfgAttr, v []byte) Attribute {
	return Attribute{Type: uint16(t), Value: orNil(v)}
}
