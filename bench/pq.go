package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// Post-quantum establishments (issue 21): the same generator (our
// engines, which run RFC 9370's additional key exchanges in
// IKE_INTERMEDIATE) drives our daemon and then strongSwan 6's charon,
// each with X25519 alone, with X25519 and ML-KEM-768, and with the
// classical hybrid X25519 and ECP-384, one fresh responder per run
// (ikeRun, as the IKE comparison).

// PQProposals are the proposals of the post-quantum comparison: the
// classical reference first, then the hybrids.
var PQProposals = []Proposal{
	{"aes128gcm16-prfsha256-x25519", "aes128gcm16"},
	{"aes128gcm16-prfsha256-x25519-ke1_mlkem768", "aes128gcm16"},
	{"aes128gcm16-prfsha256-x25519-ke1_ecp384", "aes128gcm16"},
}

// PQOptions tune the post-quantum comparison.
type PQOptions struct {
	// Bin is the xdpsec binary our responder runs as.
	Bin string
	// SAs is how many IKE SAs (one CHILD_SA each) a run opens, at most
	// Window of them in flight.
	SAs, Window int
	// Responders and Proposals to run; each pair is a run, in each of
	// Rounds rounds (at least one), of which the fastest is kept: on a
	// shared machine the rate depends on what the other work leaves.
	Responders []ResponderKind
	Proposals  []Proposal
	Rounds     int
}

// DefaultPQOptions are what `make bench` and `make bench-pq` use.
var DefaultPQOptions = PQOptions{
	SAs: 3000, Window: 64, Rounds: 3,
	Responders: []ResponderKind{Ours, Charon6}, Proposals: PQProposals,
}

// PQ runs each responder with each proposal, one after the other, in
// o.Rounds rounds, and returns each pair's fastest run. A responder that
// cannot run here (or a proposal it cannot do: ML-KEM in a charon 6
// without the ml plugin) is left out, with the reason in skipped.
// progress, if set, is told about each run.
func PQ(o PQOptions, progress func(string)) (rs []IKEResult, skipped []string, err error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := RequireIKE(nil); err != nil {
		return nil, nil, fmt.Errorf("bench pq: %w", err)
	}
	type pair struct {
		kind ResponderKind
		p    Proposal
	}
	var pairs []pair
	for _, kind := range o.Responders {
		if err := RequireIKE([]ResponderKind{kind}); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", ResponderLabel(kind), err))
			progress(fmt.Sprintf("%s left out: %v", kind, err))
			continue
		}
		for _, p := range o.Proposals {
			if kind == Charon6 && strings.Contains(p.IKE, "mlkem") {
				if err := charon6MLKEM(); err != nil {
					skipped = append(skipped, fmt.Sprintf("%s, `%s`: %v", ResponderLabel(kind), p.IKE, err))
					progress(fmt.Sprintf("%s, %s left out: %v", kind, p.IKE, err))
					continue
				}
			}
			pairs = append(pairs, pair{kind, p})
		}
	}
	io := IKEOptions{Bin: o.Bin, SAs: o.SAs, Window: o.Window}
	rs = make([]IKEResult, len(pairs))
	for round := range max(o.Rounds, 1) {
		for i, x := range pairs {
			r, err := ikeRun(io, x.kind, x.p, func(s string) { progress(fmt.Sprintf("round %d: %s", round+1, s)) })
			if err != nil {
				return nil, skipped, fmt.Errorf("bench pq: %s, %s: %w", x.kind, x.p.IKE, err)
			}
			if round == 0 || r.Rate() > rs[i].Rate() {
				rs[i] = r
			}
		}
	}
	return rs, skipped, nil
}

// hasAdditionalKE says whether the proposal's first IKE proposal has an
// additional key exchange that is not optional.
func hasAdditionalKE(p Proposal) bool {
	ps, err := transform.ParseProposals(transform.ProtoIKE, p.IKE)
	return err == nil && len(ps) > 0 && len(ps[0].AdditionalKEs()) > 0 && !optionalKE(ps[0])
}

// optionalKE says whether an additional exchange of the proposal may be
// left out (KE_NONE among its transforms).
func optionalKE(p transform.Proposal) bool {
	for n := 1; n <= 7; n++ {
		for _, t := range p.Algorithms(transform.AdditionalKE(n)) {
			if t.ID == uint16(transform.KE_NONE) {
				return true
			}
		}
	}
	return false
}

// PQRef is the result a post-quantum run compares with: the same
// responder's with PQProposals[0] (X25519 alone).
func PQRef(rs []IKEResult, kind ResponderKind) (IKEResult, bool) {
	for _, r := range rs {
		if r.Responder == kind && r.Proposal == PQProposals[0] {
			return r, true
		}
	}
	return IKEResult{}, false
}

// PQPair is our result and charon 6's with the same proposal, if both ran.
func PQPair(rs []IKEResult, p Proposal) (ours, charon6 IKEResult, ok bool) {
	var o, c bool
	for _, r := range rs {
		if r.Proposal != p {
			continue
		}
		switch r.Responder {
		case Ours:
			ours, o = r, true
		case Charon6:
			charon6, c = r, true
		}
	}
	return ours, charon6, o && c
}

// KiBPerSA is the peak resident memory the SAs added, per IKE SA, in KiB.
func (r IKEResult) KiBPerSA() float64 { return float64(r.HWM-r.IdleRSS) / float64(r.SAs) / 1024 }

// SW6RootEnv names the environment variable that overrides where the
// trixie chroot with strongSwan 6 is (as for the interop tests).
const SW6RootEnv = "XDPSEC_SW6_ROOT"

// SW6Root is the chroot `make sw6` makes with interop/strongswan6.sh:
// $XDPSEC_SW6_ROOT, else .cache/sw6/root in the directory of the go.mod
// above the working directory, "" if neither is found.
func SW6Root() string { return cacheDir(SW6RootEnv, "sw6", "root") }

// Charon6Version is the chroot's strongswan-charon version (strongswan6.sh
// writes it beside the chroot), "" if unknown.
func Charon6Version() string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(SW6Root()), "VERSION"))
	if err != nil {
		return ""
	}
	return "strongswan-charon " + strings.TrimSpace(string(b))
}
