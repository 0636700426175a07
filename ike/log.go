package ike

import (
	"fmt"
	"strings"

	"github.com/xdpsec/xdpsec/ike/message"
)

// notifyShort are charon's abbreviations of notify types in message
// summaries ("N(NATD_S_IP)").
var notifyShort = map[message.NotifyType]string{
	message.UNSUPPORTED_CRITICAL_PAYLOAD:    "UNSUPPORTED_CRIT",
	message.INVALID_IKE_SPI:                 "INVAL_IKE_SPI",
	message.INVALID_MAJOR_VERSION:           "INVAL_MAJOR",
	message.INVALID_SYNTAX:                  "INVAL_SYN",
	message.INVALID_MESSAGE_ID:              "INVAL_MID",
	message.INVALID_SPI:                     "INVAL_SPI",
	message.NO_PROPOSAL_CHOSEN:              "NO_PROP",
	message.INVALID_KE_PAYLOAD:              "INVAL_KE",
	message.AUTHENTICATION_FAILED:           "AUTH_FAILED",
	message.SINGLE_PAIR_REQUIRED:            "SINGLE_PAIR",
	message.NO_ADDITIONAL_SAS:               "NO_ADD_SAS",
	message.INTERNAL_ADDRESS_FAILURE:        "INT_ADDR_FAIL",
	message.FAILED_CP_REQUIRED:              "FAIL_CP_REQ",
	message.TS_UNACCEPTABLE:                 "TS_UNACCEPT",
	message.INVALID_SELECTORS:               "INVAL_SEL",
	message.TEMPORARY_FAILURE:               "TEMP_FAIL",
	message.CHILD_SA_NOT_FOUND:              "NO_CHILD_SA",
	message.INITIAL_CONTACT:                 "INIT_CONTACT",
	message.SET_WINDOW_SIZE:                 "SET_WINSIZE",
	message.ADDITIONAL_TS_POSSIBLE:          "ADD_TS_POSS",
	message.IPCOMP_SUPPORTED:                "IPCOMP_SUP",
	message.NAT_DETECTION_SOURCE_IP:         "NATD_S_IP",
	message.NAT_DETECTION_DESTINATION_IP:    "NATD_D_IP",
	message.COOKIE:                          "COOKIE",
	message.USE_TRANSPORT_MODE:              "USE_TRANSP",
	message.REKEY_SA:                        "REKEY_SA",
	message.ESP_TFC_PADDING_NOT_SUPPORTED:   "ESP_TFC_PAD_N",
	message.MOBIKE_SUPPORTED:                "MOBIKE_SUP",
	message.ADDITIONAL_IP4_ADDRESS:          "ADD_4_ADDR",
	message.ADDITIONAL_IP6_ADDRESS:          "ADD_6_ADDR",
	message.NO_ADDITIONAL_ADDRESSES:         "NO_ADD_ADDR",
	message.UPDATE_SA_ADDRESSES:             "UPD_SA_ADDR",
	message.COOKIE2:                         "COOKIE2",
	message.NO_NATS_ALLOWED:                 "NO_NATS_ALLOWED",
	message.MULTIPLE_AUTH_SUPPORTED:         "MULT_AUTH",
	message.IKEV2_FRAGMENTATION_SUPPORTED:   "FRAG_SUP",
	message.SIGNATURE_HASH_ALGORITHMS:       "HASH_ALG",
	message.CHILDLESS_IKEV2_SUPPORTED:       "CHDLESS_SUP",
	message.REDIRECT_SUPPORTED:              "REDIR_SUP",
	message.REDIRECT:                        "REDIR",
	message.REDIRECTED_FROM:                 "REDIR_FROM",
	message.IKEV2_MESSAGE_ID_SYNC_SUPPORTED: "MSG_ID_SYN_SUP",
	message.IKEV2_MESSAGE_ID_SYNC:           "MSG_ID_SYN",
	message.INTERMEDIATE_EXCHANGE_SUPPORTED: "IKE_INT_SUP",
	message.ADDITIONAL_KEY_EXCHANGE:         "ADD_KE",
	message.STATE_NOT_FOUND:                 "NO_STATE",
}

// summarize formats a message as charon's "parsed"/"generating" lines do:
// "IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]".
func summarize(m *message.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %s %d [ ", m.Header.ExchangeType, reqOrResp(&m.Header), m.Header.MessageID)
	for _, p := range m.Payloads {
		b.WriteString(payloadShort(p))
		b.WriteByte(' ')
	}
	b.WriteByte(']')
	return b.String()
}

func payloadShort(p message.Payload) string {
	switch p := p.(type) {
	case *message.SecurityAssociation:
		return "SA"
	case *message.KeyExchange:
		return "KE"
	case *message.Nonce:
		return "No"
	case *message.IDi:
		return "IDi"
	case *message.IDr:
		return "IDr"
	case *message.Certificate:
		return "CERT"
	case *message.CertificateRequest:
		return "CERTREQ"
	case *message.Authentication:
		return "AUTH"
	case *message.Notify:
		if s, ok := notifyShort[p.NotifyType]; ok {
			return "N(" + s + ")"
		}
		return fmt.Sprintf("N(%d)", uint16(p.NotifyType))
	case *message.Delete:
		return "D"
	case *message.VendorID:
		return "V"
	case *message.TSi:
		return "TSi"
	case *message.TSr:
		return "TSr"
	case *message.Encrypted:
		return "SK"
	case *message.EncryptedFragment:
		return fmt.Sprintf("EF(%d/%d)", p.Number, p.Total)
	case *message.Configuration:
		return "CP"
	case *message.EAP:
		return "EAP"
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint8(p.Type()))
}
