package eap

import "strconv"

// String names the Code as charon logs it (eap_code_names).
func (c Code) String() string {
	switch c {
	case CodeRequest:
		return "EAP_REQUEST"
	case CodeResponse:
		return "EAP_RESPONSE"
	case CodeSuccess:
		return "EAP_SUCCESS"
	case CodeFailure:
		return "EAP_FAILURE"
	}
	return "EAP_CODE_" + strconv.Itoa(int(c))
}

// String names the Type as charon logs it (eap_type_names), so that "EAP
// method EAP_MSCHAPV2 failed for peer ..." reads as charon's line does.
func (t Type) String() string {
	switch t {
	case TypeIdentity:
		return "EAP_IDENTITY"
	case TypeNotification:
		return "EAP_NOTIFICATION"
	case TypeNak:
		return "EAP_NAK"
	case TypeMD5:
		return "EAP_MD5"
	case 5:
		return "EAP_OTP"
	case 6:
		return "EAP_GTC"
	case TypeTLS:
		return "EAP_TLS"
	case 18:
		return "EAP_SIM"
	case 21:
		return "EAP_TTLS"
	case 23:
		return "EAP_AKA"
	case 25:
		return "EAP_PEAP"
	case TypeMSCHAPv2:
		return "EAP_MSCHAPV2"
	case TypeExpanded:
		return "EAP_EXPANDED"
	case TypeExperimental:
		return "EAP_EXPERIMENTAL"
	}
	return strconv.Itoa(int(t))
}
