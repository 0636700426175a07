package vici

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of the wire format and of what we accept.
const (
	// MaxSegment is the largest transport segment (packet) either side
	// may send: 512 KiB, as charon.
	MaxSegment = 512 * 1024
	// MaxDepth bounds the nesting of sections in a message we decode, so
	// that a hostile client cannot make us recurse without end.
	MaxDepth = 64
)

// Element types of the message encoding (README.md, "Message format").
const (
	elemSectionStart = 1
	elemSectionEnd   = 2
	elemKeyValue     = 3
	elemListStart    = 4
	elemListItem     = 5
	elemListEnd      = 6
)

// Packet types of the packet layer.
const (
	CmdRequest      = 0 // named request
	CmdResponse     = 1
	CmdUnknown      = 2
	EventRegister   = 3 // named
	EventUnregister = 4 // named
	EventConfirm    = 5
	EventUnknown    = 6
	Event           = 7 // named
)

// named reports whether packets of type t carry a name.
func named(t uint8) bool {
	return t == CmdRequest || t == EventRegister || t == EventUnregister || t == Event
}

// ErrMessage is wrapped by every decoding error.
var ErrMessage = errors.New("vici: malformed message")

// Kind is what an element of a Message holds.
type Kind uint8

const (
	KindValue Kind = iota + 1
	KindList
	KindSection
)

// Element is one named entry of a section: a value, a list of values or
// a subsection. Values are blobs; VICI uses non-terminated strings.
type Element struct {
	Kind    Kind
	Key     string
	Value   []byte
	List    [][]byte
	Section *Message
}

// Message is a VICI section tree; the root is the implicit section.
// Elements keep their order, which swanctl's output follows.
type Message struct {
	Elements []Element
}

// NewMessage returns an empty message.
func NewMessage() *Message { return &Message{} }

// Set adds (or replaces) a key/value; it returns m for chaining.
func (m *Message) Set(key, value string) *Message {
	return m.put(Element{Kind: KindValue, Key: key, Value: []byte(value)})
}

// SetList adds (or replaces) a list.
func (m *Message) SetList(key string, values []string) *Message {
	l := make([][]byte, len(values))
	for i, v := range values {
		l[i] = []byte(v)
	}
	return m.put(Element{Kind: KindList, Key: key, List: l})
}

// Section adds (or replaces) an empty subsection and returns it.
func (m *Message) Section(key string) *Message {
	s := &Message{}
	m.put(Element{Kind: KindSection, Key: key, Section: s})
	return s
}

// AddSection adds s as subsection key.
func (m *Message) AddSection(key string, s *Message) *Message {
	return m.put(Element{Kind: KindSection, Key: key, Section: s})
}

func (m *Message) put(e Element) *Message {
	for i := range m.Elements {
		if m.Elements[i].Key == e.Key {
			m.Elements[i] = e
			return m
		}
	}
	m.Elements = append(m.Elements, e)
	return m
}

func (m *Message) find(key string, k Kind) *Element {
	if m == nil {
		return nil
	}
	for i := range m.Elements {
		if m.Elements[i].Key == key && m.Elements[i].Kind == k {
			return &m.Elements[i]
		}
	}
	return nil
}

// Get returns the value of key, "" if there is none.
func (m *Message) Get(key string) string {
	if e := m.find(key, KindValue); e != nil {
		return string(e.Value)
	}
	return ""
}

// Has reports whether key is set (as a value, list or section).
func (m *Message) Has(key string) bool {
	if m == nil {
		return false
	}
	for _, e := range m.Elements {
		if e.Key == key {
			return true
		}
	}
	return false
}

// GetList returns the list of key.
func (m *Message) GetList(key string) []string {
	e := m.find(key, KindList)
	if e == nil {
		return nil
	}
	out := make([]string, len(e.List))
	for i, v := range e.List {
		out[i] = string(v)
	}
	return out
}

// GetSection returns the subsection key, or nil.
func (m *Message) GetSection(key string) *Message {
	if e := m.find(key, KindSection); e != nil {
		return e.Section
	}
	return nil
}

// String shows the tree for tests and debugging. It prints values: never
// format a message that may hold secrets.
func (m *Message) String() string {
	var b strings.Builder
	m.format(&b, "")
	return b.String()
}

func (m *Message) format(b *strings.Builder, indent string) {
	for _, e := range m.Elements {
		switch e.Kind {
		case KindValue:
			fmt.Fprintf(b, "%s%s = %s\n", indent, e.Key, e.Value)
		case KindList:
			fmt.Fprintf(b, "%s%s = [", indent, e.Key)
			for _, v := range e.List {
				fmt.Fprintf(b, " %s", v)
			}
			b.WriteString(" ]\n")
		case KindSection:
			fmt.Fprintf(b, "%s%s {\n", indent, e.Key)
			e.Section.format(b, indent+"  ")
			fmt.Fprintf(b, "%s}\n", indent)
		}
	}
}

// Encode appends the encoding of m to dst.
func (m *Message) Encode(dst []byte) ([]byte, error) {
	return m.encode(dst, 0)
}

func (m *Message) encode(dst []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("vici: sections nested deeper than %d", MaxDepth)
	}
	var err error
	for _, e := range m.Elements {
		// An empty name is allowed: charon's get-counters names the
		// global counters "".
		if len(e.Key) > 255 {
			return nil, fmt.Errorf("vici: key %.40q: length %d is more than 255", e.Key, len(e.Key))
		}
		switch e.Kind {
		case KindValue:
			dst = append(append(dst, elemKeyValue, byte(len(e.Key))), e.Key...)
			if dst, err = appendBlob(dst, e.Key, e.Value); err != nil {
				return nil, err
			}
		case KindList:
			dst = append(append(dst, elemListStart, byte(len(e.Key))), e.Key...)
			for _, v := range e.List {
				dst = append(dst, elemListItem)
				if dst, err = appendBlob(dst, e.Key, v); err != nil {
					return nil, err
				}
			}
			dst = append(dst, elemListEnd)
		case KindSection:
			dst = append(append(dst, elemSectionStart, byte(len(e.Key))), e.Key...)
			if e.Section != nil {
				if dst, err = e.Section.encode(dst, depth+1); err != nil {
					return nil, err
				}
			}
			dst = append(dst, elemSectionEnd)
		default:
			return nil, fmt.Errorf("vici: element %q has no kind", e.Key)
		}
	}
	return dst, nil
}

func appendBlob(dst []byte, key string, v []byte) ([]byte, error) {
	if len(v) > 0xffff {
		return nil, fmt.Errorf("vici: value of %q is %d bytes, more than 65535", key, len(v))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...), nil
}

// Decode parses a message. Hostile input gives an error wrapping
// ErrMessage, never a panic.
func Decode(data []byte) (*Message, error) {
	d := decoder{data: data}
	root := &Message{}
	stack := []*Message{root}
	for d.pos < len(d.data) {
		t := d.data[d.pos]
		d.pos++
		cur := stack[len(stack)-1]
		switch t {
		case elemSectionStart:
			name, err := d.name()
			if err != nil {
				return nil, err
			}
			if len(stack) > MaxDepth {
				return nil, fmt.Errorf("%w: sections nested deeper than %d", ErrMessage, MaxDepth)
			}
			s := &Message{}
			cur.Elements = append(cur.Elements, Element{Kind: KindSection, Key: name, Section: s})
			stack = append(stack, s)
		case elemSectionEnd:
			if len(stack) == 1 {
				return nil, fmt.Errorf("%w: section end without a section", ErrMessage)
			}
			stack = stack[:len(stack)-1]
		case elemKeyValue:
			name, err := d.name()
			if err != nil {
				return nil, err
			}
			v, err := d.blob()
			if err != nil {
				return nil, err
			}
			cur.Elements = append(cur.Elements, Element{Kind: KindValue, Key: name, Value: v})
		case elemListStart:
			name, err := d.name()
			if err != nil {
				return nil, err
			}
			el := Element{Kind: KindList, Key: name, List: [][]byte{}}
			for {
				if d.pos >= len(d.data) {
					return nil, fmt.Errorf("%w: list %q not closed", ErrMessage, name)
				}
				t := d.data[d.pos]
				d.pos++
				if t == elemListEnd {
					break
				}
				if t != elemListItem {
					return nil, fmt.Errorf("%w: element type %d inside list %q", ErrMessage, t, name)
				}
				v, err := d.blob()
				if err != nil {
					return nil, err
				}
				el.List = append(el.List, v)
			}
			cur.Elements = append(cur.Elements, el)
		default:
			return nil, fmt.Errorf("%w: element type %d at offset %d", ErrMessage, t, d.pos-1)
		}
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("%w: %d sections not closed", ErrMessage, len(stack)-1)
	}
	return root, nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) name() (string, error) {
	if d.pos >= len(d.data) {
		return "", fmt.Errorf("%w: truncated name", ErrMessage)
	}
	n := int(d.data[d.pos])
	d.pos++
	if d.pos+n > len(d.data) {
		return "", fmt.Errorf("%w: name of length %d at offset %d runs past the end", ErrMessage, n, d.pos-1)
	}
	s := string(d.data[d.pos : d.pos+n])
	d.pos += n
	return s, nil
}

func (d *decoder) blob() ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, fmt.Errorf("%w: truncated value length", ErrMessage)
	}
	n := int(binary.BigEndian.Uint16(d.data[d.pos:]))
	d.pos += 2
	if d.pos+n > len(d.data) {
		return nil, fmt.Errorf("%w: value of %d bytes runs past the end", ErrMessage, n)
	}
	v := append([]byte(nil), d.data[d.pos:d.pos+n]...)
	d.pos += n
	return v, nil
}

// Packet is one packet of the packet layer.
type Packet struct {
	Type uint8
	Name string   // for named types
	Msg  *Message // nil for none
}

// ReadPacket reads one transport segment and decodes the packet in it.
// A segment longer than MaxSegment is refused before it is read.
func ReadPacket(r io.Reader) (Packet, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Packet{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxSegment {
		return Packet{}, fmt.Errorf("%w: segment of %d bytes, more than %d", ErrMessage, n, MaxSegment)
	}
	if n == 0 {
		return Packet{}, fmt.Errorf("%w: empty segment", ErrMessage)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Packet{}, fmt.Errorf("%w: truncated segment: %v", ErrMessage, err)
	}
	return DecodePacket(buf)
}

// DecodePacket decodes a packet (a segment without its length).
func DecodePacket(buf []byte) (Packet, error) {
	if len(buf) == 0 {
		return Packet{}, fmt.Errorf("%w: empty packet", ErrMessage)
	}
	p := Packet{Type: buf[0]}
	if p.Type > Event {
		return Packet{}, fmt.Errorf("%w: packet type %d", ErrMessage, p.Type)
	}
	d := decoder{data: buf, pos: 1}
	if named(p.Type) {
		name, err := d.name()
		if err != nil {
			return Packet{}, err
		}
		if name == "" {
			return Packet{}, fmt.Errorf("%w: packet of type %d without a name", ErrMessage, p.Type)
		}
		p.Name = name
	}
	m, err := Decode(buf[d.pos:])
	if err != nil {
		return Packet{}, err
	}
	p.Msg = m
	return p, nil
}

// Encode returns the segment of p, length included.
func (p Packet) Encode() ([]byte, error) {
	b := make([]byte, 4, 64)
	b = append(b, p.Type)
	if named(p.Type) {
		if p.Name == "" || len(p.Name) > 255 {
			return nil, fmt.Errorf("vici: packet name %.40q: length %d not in 1..255", p.Name, len(p.Name))
		}
		b = append(append(b, byte(len(p.Name))), p.Name...)
	}
	var err error
	if p.Msg != nil {
		if b, err = p.Msg.Encode(b); err != nil {
			return nil, err
		}
	}
	if len(b)-4 > MaxSegment {
		return nil, fmt.Errorf("vici: packet of %d bytes, more than %d", len(b)-4, MaxSegment)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}
