package swanctl

import "github.com/xdpsec/xdpsec/ike"

// parseTSList parses local_ts or remote_ts: selectors as ike.ParseTSSpec
// reads them ("dynamic", "10.0.0.0/16[tcp/443]", ...), separated by
// commas.
func parseTSList(s string) ([]ike.TSSpec, error) {
	var out []ike.TSSpec
	for _, item := range splitList(s) {
		ts, err := parseTS(item)
		if err != nil {
			return nil, err
		}
		out = append(out, ts)
	}
	return out, nil
}

func parseTS(s string) (ike.TSSpec, error) {
	ts, err := ike.ParseTSSpec(s)
	if err != nil {
		return ts, wrapErr(ErrValue, err)
	}
	return ts, nil
}

// tsFamily returns the selector's address family, familyAny for dynamic.
func tsFamily(ts ike.TSSpec) family {
	if ts.Dynamic {
		return familyAny
	}
	return familyOf(ts.TS.Start)
}
