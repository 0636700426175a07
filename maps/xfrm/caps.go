package xfrm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// Feature is one thing the kernel can or cannot do, and why.
type Feature struct {
	Available bool
	// Reason says why the feature is missing or could not be tested; for
	// an available feature it may note a limit.
	Reason string
}

func (f Feature) String() string {
	s := "no"
	if f.Available {
		s = "yes"
	}
	if f.Reason != "" {
		s += " (" + f.Reason + ")"
	}
	return s
}

// AlgorithmSupport says whether the kernel has one ESP algorithm.
type AlgorithmSupport struct {
	Name string // the kernel's name, with the HMAC's truncation where it has one
	Feature
}

// Capabilities is what the running kernel's XFRM can do.
type Capabilities struct {
	ESP               Feature // ESP SAs with IPv4 outer addresses (esp4)
	ESP6              Feature // ESP SAs with IPv6 outer addresses (esp6)
	ESN               Feature // extended sequence numbers
	Offload           Feature // the kernel acts on offload requests; each device still decides
	Interface         Feature // XFRM interfaces (xfrm_interface)
	ExternalInterface Feature // collect_md XFRM interfaces (Linux 6.0+)
	Algorithms        []AlgorithmSupport
}

// Summary is one line for the daemon's start-up log.
func (c Capabilities) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ESP %s, ESP over IPv6 %s, ESN %s, offload %s, xfrm interfaces %s, external xfrm interface %s",
		c.ESP, c.ESP6, c.ESN, c.Offload, c.Interface, c.ExternalInterface)
	var missing []string
	for _, a := range c.Algorithms {
		if !a.Available {
			missing = append(missing, a.Name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, ", missing algorithms: %s", strings.Join(missing, ", "))
	}
	return b.String()
}

// probeAlgorithms are the ESP algorithms xdpsec negotiates.
var probeAlgorithms = []struct {
	encr    transform.EncrID
	keyBits uint16
	integ   transform.IntegID
}{
	{transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE},
	{transform.ENCR_CHACHA20_POLY1305, 0, transform.AUTH_NONE},
	{transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA1_96},
	{transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_256_128},
	{transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_384_192},
	{transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_512_256},
}

// probeCrypto makes throwaway random keys for a probe SA.
func probeCrypto(encr transform.EncrID, keyBits uint16, integ transform.IntegID) Crypto {
	ek, ik, _ := KeyLengths(encr, keyBits, integ)
	c := Crypto{Encr: encr, KeyBits: keyBits, Integ: integ, EncrKey: make([]byte, ek), IntegKey: make([]byte, ik)}
	rand.Read(c.EncrKey)
	rand.Read(c.IntegKey)
	if ik == 0 {
		c.IntegKey = nil
	}
	return c
}

func algName(c Crypto) string {
	a, err := c.algorithms()
	if err != nil {
		return c.String()
	}
	if a.AEAD != "" {
		return fmt.Sprintf("%s/%d", a.AEAD, a.ICVBits)
	}
	return fmt.Sprintf("%s+%s/%d", a.Encr, a.Integ, a.ICVBits)
}

// Probe finds out what the running kernel's XFRM can do, by trying it in
// a throwaway network namespace that disappears afterwards. It needs
// CAP_SYS_ADMIN and CAP_NET_ADMIN.
func Probe() (Capabilities, error) {
	c, err := openThrowaway()
	if err != nil {
		return Capabilities{}, fmt.Errorf("probe XFRM: %w", err)
	}
	defer c.Close()
	return c.probe(), nil
}

// reason is an error as a Feature's reason.
func reason(err error) string { return err.Error() }

var (
	probeSrc4 = netip.MustParseAddr("192.0.2.1")
	probeDst4 = netip.MustParseAddr("192.0.2.2")
	probeSrc6 = netip.MustParseAddr("2001:db8::1")
	probeDst6 = netip.MustParseAddr("2001:db8::2")
)

// probe tries each feature in c's namespace, which must be one nothing
// else uses: it adds SAs and an interface there.
func (c *Conn) probe() Capabilities {
	var caps Capabilities
	spi := uint32(0x1000)
	try := func(s State) error {
		spi++
		s.SPI = spi
		if s.Mode == 0 {
			s.Mode = ModeTunnel
		}
		_, err := c.AddState(s)
		s.Crypto.Zero()
		if err == nil {
			c.DeleteState(s.ID())
		}
		return err
	}

	// Algorithms are looked up before the ESP type, so each one can be
	// told apart even on a kernel without ESP.
	var (
		working *Crypto
		espErr  error
	)
	for _, pa := range probeAlgorithms {
		cr := probeCrypto(pa.encr, pa.keyBits, pa.integ)
		name := algName(cr)
		err := try(State{Src: probeSrc4, Dst: probeDst4, Crypto: cr})
		as := AlgorithmSupport{Name: name, Feature: Feature{Available: true}}
		switch {
		case err == nil:
			if working == nil {
				working = &Crypto{Encr: pa.encr, KeyBits: pa.keyBits, Integ: pa.integ}
			}
		case errors.Is(err, ErrNoAlgorithm):
			as.Feature = Feature{Reason: kernelReason(err)}
		case errors.Is(err, ErrNoESP):
			espErr = err
			as.Reason = "known to the crypto API; untested without ESP"
		default:
			as.Feature = Feature{Reason: kernelReason(err)}
			espErr = err
		}
		caps.Algorithms = append(caps.Algorithms, as)
	}
	if working == nil {
		if espErr == nil {
			espErr = errors.New("no ESP algorithm is available")
		}
		caps.ESP = Feature{Reason: reason(unwrapSA(espErr))}
		untested := Feature{Reason: "cannot tell without ESP"}
		caps.ESP6, caps.ESN, caps.Offload = untested, untested, untested
	} else {
		newCrypto := func() Crypto { return probeCrypto(working.Encr, working.KeyBits, working.Integ) }
		caps.ESP = Feature{Available: true}
		caps.ESP6 = featureOf(try(State{Src: probeSrc6, Dst: probeDst6, Crypto: newCrypto()}))
		caps.ESN = featureOf(try(State{Src: probeSrc4, Dst: probeDst4, Crypto: newCrypto(), ESN: true, ReplayWindow: 32}))
		caps.Offload = c.probeOffload(&spi, newCrypto())
	}
	caps.Interface, caps.ExternalInterface = c.probeInterfaces()
	return caps
}

// probeOffload asks for packet offload on loopback, which has no IPsec
// offload: a kernel that acts on offload requests refuses (EINVAL), one
// built without CONFIG_XFRM_OFFLOAD installs the SA in software.
func (c *Conn) probeOffload(spi *uint32, cr Crypto) Feature {
	*spi++
	s := State{Src: probeSrc4, Dst: probeDst4, SPI: *spi, Mode: ModeTunnel, Crypto: cr}
	defer s.Crypto.Zero()
	req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, &offloadAttr{ifindex: 1, flags: offloadPacket})
	if err != nil {
		return Feature{Reason: err.Error()}
	}
	err = classify(c.exec(c.xfrm, req, nil), nil)
	switch {
	case errors.Is(err, unix.EINVAL):
		return Feature{Available: true, Reason: "devices need ESP offload support (esp-hw-offload)"}
	case err == nil:
		c.DeleteState(s.ID())
		return Feature{Reason: "the kernel ignores offload requests (built without CONFIG_XFRM_OFFLOAD)"}
	}
	return Feature{Reason: kernelReason(err)}
}

func (c *Conn) probeInterfaces() (plain, external Feature) {
	const name = "xdpsecprobe0"
	if err := c.AddInterface(Interface{Name: name, IfID: 1}); err != nil {
		return Feature{Reason: kernelReason(err)}, Feature{Reason: "no XFRM interfaces"}
	}
	c.DeleteInterface(name)
	if err := c.AddInterface(Interface{Name: name, External: true}); err != nil {
		return Feature{Available: true}, Feature{Reason: kernelReason(err)}
	}
	defer c.DeleteInterface(name)
	i, err := c.GetInterface(name)
	if err != nil {
		return Feature{Available: true}, Feature{Reason: err.Error()}
	}
	if !i.External {
		return Feature{Available: true}, Feature{Reason: "the kernel ignored collect_md (needs Linux 6.0+)"}
	}
	return Feature{Available: true}, Feature{Available: true}
}

func featureOf(err error) Feature {
	if err == nil {
		return Feature{Available: true}
	}
	return Feature{Reason: kernelReason(err)}
}

// kernelReason drops the "add SA ..." context of a probe's error: the
// probe SA means nothing to the reader.
func kernelReason(err error) string { return unwrapSA(err).Error() }

func unwrapSA(err error) error {
	for _, sentinel := range []error{ErrNoESP, ErrNoAlgorithm, ErrNoXfrmInterface} {
		if errors.Is(err, sentinel) {
			var ke *KernelError
			if errors.As(err, &ke) {
				return fmt.Errorf("%w: %w", sentinel, ke)
			}
			return sentinel
		}
	}
	var ke *KernelError
	if errors.As(err, &ke) {
		return ke
	}
	return err
}
