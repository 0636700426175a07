package transform

// Key material must not reach logs by accident: the types holding keys
// format as a placeholder under every fmt verb that would print them.

const redacted = "[key material redacted]"

func (IKEKeys) String() string     { return "IKEKeys" + redacted }
func (IKEKeys) GoString() string   { return "transform.IKEKeys" + redacted }
func (SAKeys) String() string      { return "SAKeys" + redacted }
func (SAKeys) GoString() string    { return "transform.SAKeys" + redacted }
func (ChildKeys) String() string   { return "ChildKeys" + redacted }
func (ChildKeys) GoString() string { return "transform.ChildKeys" + redacted }
