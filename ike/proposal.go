package ike

import (
	"slices"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// proposalsToWire numbers our proposals from 1 and gives each the SPI.
func proposalsToWire(ps []transform.Proposal, spi []byte) []message.Proposal {
	out := make([]message.Proposal, len(ps))
	for i, p := range ps {
		out[i] = proposalToWire(p, uint8(i+1), spi)
	}
	return out
}

func proposalToWire(p transform.Proposal, number uint8, spi []byte) message.Proposal {
	w := message.Proposal{Number: number, Protocol: message.ProtocolID(p.Protocol), SPI: slices.Clone(spi),
		Transforms: make([]message.Transform, 0, len(p.Transforms))}
	for _, t := range p.Transforms {
		w.Transforms = append(w.Transforms, message.Transform{Type: uint8(t.Type), ID: t.ID, KeyLength: t.KeyLength})
	}
	return w
}

// proposalFromWire converts a received proposal. Transforms with
// attributes we do not know are left out (RFC 7296 section 3.3.6: such a
// transform must be rejected, not the proposal).
func proposalFromWire(w message.Proposal) transform.Proposal {
	p := transform.Proposal{Protocol: transform.Protocol(w.Protocol), Transforms: make([]transform.Transform, 0, len(w.Transforms))}
	for _, t := range w.Transforms {
		if len(t.Attributes) != 0 {
			continue
		}
		p.Transforms = append(p.Transforms, transform.Transform{Type: transform.TransformType(t.Type), ID: t.ID, KeyLength: t.KeyLength})
	}
	return p
}

func proposalsFromWire(ws []message.Proposal, protocol message.ProtocolID) []transform.Proposal {
	var out []transform.Proposal
	for _, w := range ws {
		if w.Protocol == protocol {
			out = append(out, proposalFromWire(w))
		}
	}
	return out
}

// selection is a proposal chosen from a peer's offer.
type selection struct {
	proposal transform.Proposal // one transform of each type
	number   uint8              // the peer's Proposal Num
	spi      []byte             // the peer's SPI in that proposal
}

// selectProposal picks the first of our configured proposals that one of
// the received ones matches, and in it our most preferred algorithm of each
// type (charon's default, prefer_configured_proposals = yes).
func selectProposal(configured []transform.Proposal, received []message.Proposal) (selection, bool) {
	for _, c := range configured {
		for _, w := range received {
			if transform.Protocol(w.Protocol) != c.Protocol {
				continue
			}
			if p, ok := matchProposal(c, proposalFromWire(w)); ok {
				return selection{proposal: p, number: w.Number, spi: slices.Clone(w.SPI)}, true
			}
		}
	}
	return selection{}, false
}

var transformTypes = []transform.TransformType{transform.TransformENCR, transform.TransformPRF, transform.TransformINTEG, transform.TransformKE,
	transform.TransformADDKE1, transform.TransformADDKE1 + 1, transform.TransformADDKE1 + 2, transform.TransformADDKE1 + 3,
	transform.TransformADDKE1 + 4, transform.TransformADDKE1 + 5, transform.TransformADDKE7, transform.TransformESN}

// matchProposal intersects two proposals of the same protocol, keeping
// ours' order of preference. An absent KE (ESP, AH) stands for none, an absent
// ESN for no ESN, an absent additional key exchange (RFC 9370) for NONE:
// ours optional ("none" among them) matches a peer that proposes none.
// A method we do not implement is never in ours, so a peer's additional
// exchange of it is declined like any other transform.
func matchProposal(ours, theirs transform.Proposal) (transform.Proposal, bool) {
	out := transform.Proposal{Protocol: ours.Protocol}
	addKE := ours.HasAdditionalKEs() || theirs.HasAdditionalKEs()
	for _, t := range transformTypes {
		if t.IsAdditionalKE() && !addKE {
			continue
		}
		implicit, hasImplicit := implicitTransform(ours, t)
		listed := listsType(ours, t)
		if !listed && !hasImplicit && !listsType(theirs, t) {
			if _, ok := implicitTransform(theirs, t); !ok {
				continue
			}
		}
		// The first of ours (or what their absence stands for) that
		// theirs offers.
		var x transform.Transform
		found := false
		if listed {
			for _, y := range ours.Transforms {
				if y.Type == t && offers(theirs, y) {
					x, found = y, true
					break
				}
			}
		} else if hasImplicit && offers(theirs, implicit) {
			x, found = implicit, true
		}
		if !found {
			return transform.Proposal{}, false
		}
		switch {
		case t == transform.TransformKE && x.ID == uint16(transform.KE_NONE):
		case t.IsAdditionalKE() && !listsType(theirs, t):
			// NONE by absence: the reply does not name it.
		default:
			out.Transforms = append(out.Transforms, x)
		}
	}
	return out, true
}

// implicitTransform is what p's lack of any transform of type t stands
// for: NONE for an additional key exchange; for ESP and AH, no key
// exchange and no ESN.
func implicitTransform(p transform.Proposal, t transform.TransformType) (transform.Transform, bool) {
	switch {
	case t.IsAdditionalKE():
		return transform.Transform{Type: t, ID: uint16(transform.KE_NONE)}, true
	case p.Protocol != transform.ProtoESP && p.Protocol != transform.ProtoAH:
		return transform.Transform{}, false
	case t == transform.TransformKE:
		return transform.Transform{Type: t, ID: uint16(transform.KE_NONE)}, true
	case t == transform.TransformESN:
		return transform.Transform{Type: t, ID: uint16(transform.NO_ESN)}, true
	}
	return transform.Transform{}, false
}

// listsType says whether p lists a transform of type t.
func listsType(p transform.Proposal, t transform.TransformType) bool {
	for _, y := range p.Transforms {
		if y.Type == t {
			return true
		}
	}
	return false
}

// offers says whether p offers x: lists it, or lists none of its type
// and that stands for x.
func offers(p transform.Proposal, x transform.Transform) bool {
	if listsType(p, x.Type) {
		return slices.Contains(p.Transforms, x)
	}
	i, ok := implicitTransform(p, x.Type)
	return ok && i == x
}

func withImplicit(p transform.Proposal, t transform.TransformType) []transform.Transform {
	if a := p.Algorithms(t); len(a) > 0 {
		return a
	}
	if i, ok := implicitTransform(p, t); ok {
		return []transform.Transform{i}
	}
	return nil
}

// withoutKE removes the key exchange transforms: the CHILD_SA of IKE_AUTH
// has no key exchange of its own (RFC 7296 section 1.2).
func withoutKE(ps []transform.Proposal) []transform.Proposal {
	out := make([]transform.Proposal, len(ps))
	for i, p := range ps {
		out[i] = transform.Proposal{Protocol: p.Protocol}
		for _, t := range p.Transforms {
			if t.Type != transform.TransformKE && !t.Type.IsAdditionalKE() {
				out[i].Transforms = append(out[i].Transforms, t)
			}
		}
	}
	return out
}

// firstKE is the key exchange we send a KE payload for: the first group of
// the first proposal that has one.
func firstKE(ps []transform.Proposal) transform.KEID {
	for _, p := range ps {
		for _, t := range p.Algorithms(transform.TransformKE) {
			if t.ID != uint16(transform.KE_NONE) {
				return transform.KEID(t.ID)
			}
		}
	}
	return transform.KE_NONE
}

// offersKE reports whether any proposal contains the group.
func offersKE(ps []transform.Proposal, g transform.KEID) bool {
	for _, p := range ps {
		if slices.Contains(p.Algorithms(transform.TransformKE), transform.Transform{Type: transform.TransformKE, ID: uint16(g)}) {
			return true
		}
	}
	return false
}

// selectedKE is the group of a selected proposal, KE_NONE if none.
func selectedKE(p transform.Proposal) transform.KEID {
	if a := p.Algorithms(transform.TransformKE); len(a) == 1 {
		return transform.KEID(a[0].ID)
	}
	return transform.KE_NONE
}

// isSelected reports whether p holds exactly one transform of each type, as
// a reply's proposal must.
func isSelected(p transform.Proposal) bool {
	seen := map[transform.TransformType]bool{}
	for _, t := range p.Transforms {
		if seen[t.Type] {
			return false
		}
		seen[t.Type] = true
	}
	return true
}

// withoutAdditionalKEs removes the ADDKE transforms of received proposals
// (a peer that does not announce IKE_INTERMEDIATE cannot run them).
func withoutAdditionalKEs(ws []message.Proposal) []message.Proposal {
	out := make([]message.Proposal, len(ws))
	for i, w := range ws {
		out[i] = w
		out[i].Transforms = slices.DeleteFunc(slices.Clone(w.Transforms), func(t message.Transform) bool {
			return transform.TransformType(t.Type).IsAdditionalKE()
		})
	}
	return out
}
