package ike

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
)

// cookieJar makes and checks the stateless cookies of RFC 7296 section 2.6:
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// The secret is replaced every CookieSecretLifetime; cookies made with the
// previous one stay valid so that an initiator in the middle of its retry
// is not turned away.
type cookieJar struct {
	rand     io.Reader
	version  uint32
	secret   [32]byte
	previous [32]byte
	rotated  time.Time
}

func (j *cookieJar) rotate(now time.Time, lifetime time.Duration) {
	if j.version != 0 && now.Sub(j.rotated) < lifetime {
		return
	}
	j.previous = j.secret
	if _, err := io.ReadFull(j.rand, j.secret[:]); err != nil {
		panic("ike: random source failed: " + err.Error())
	}
	j.version++
	j.rotated = now
}

func (j *cookieJar) make(version uint32, secret *[32]byte, ni []byte, d Datagram, spiI uint64) []byte {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(ni)
	mac.Write(d.Remote.Addr().Unmap().AsSlice())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	mac.Write(b[:])
	return mac.Sum(binary.BigEndian.AppendUint32(nil, version))
}

func (j *cookieJar) valid(c, ni []byte, d Datagram, spiI uint64) bool {
	if len(c) < 4 {
		return false
	}
	switch binary.BigEndian.Uint32(c) {
	case j.version:
		return hmac.Equal(c, j.make(j.version, &j.secret, ni, d, spiI))
	case j.version - 1:
		return j.version > 1 && hmac.Equal(c, j.make(j.version-1, &j.previous, ni, d, spiI))
	}
	return false
}

// checkCookie decides whether an IKE_SA_INIT request may create state:
// below the half-open threshold always, above it only with a valid
// cookie; otherwise it answers with a fresh COOKIE and returns false.
func (e *Engine) checkCookie(m *message.Message, d Datagram) bool {
	if e.cfg.CookieThreshold < 0 || e.halfOpen() < e.cfg.CookieThreshold {
		return true
	}
	e.cookie.rotate(e.clock.Now(), e.cfg.CookieSecretLifetime)
	ni, ok := find[*message.Nonce](m)
	if !ok {
		e.stats.DroppedMalformed++
		return false
	}
	if n := findNotify(m, message.COOKIE); n != nil {
		if e.cookie.valid(n.Data, ni.Data, d, m.Header.InitiatorSPI) {
			return true
		}
		e.stats.CookiesRejected++
		e.log.Info("received invalid COOKIE notify, sending new one")
	} else {
		e.log.Info("received packet without COOKIE while above cookie threshold, sending COOKIE")
	}
	c := e.cookie.make(e.cookie.version, &e.cookie.secret, ni.Data, d, m.Header.InitiatorSPI)
	e.stats.CookiesSent++
	e.sendUnprotectedNotify(m.Header, d, message.COOKIE, c)
	return false
}
