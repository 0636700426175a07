package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// transferResult is what a TCP transfer moved and how long it took.
type transferResult struct {
	bytes    int64
	duration time.Duration
}

func (r transferResult) String() string {
	return fmt.Sprintf("%d MB in %v (%.1f MB/s)", r.bytes>>20, r.duration.Round(time.Millisecond),
		float64(r.bytes)/(1<<20)/r.duration.Seconds())
}

// tcpTransfer sends size pseudo-random bytes over one TCP connection from
// src (in srcNS; invalid: the address the routes give) to dst (in dstNS) and checks that the receiver's SHA-256
// of the stream is the sender's. Sockets are made on a thread inside their
// namespace; reading and writing need no namespace. during, if set, runs
// while the transfer is under way (after its first megabyte).
func tcpTransfer(t *testing.T, srcNS *testenv.Netns, src netip.Addr, dstNS *testenv.Netns, dst netip.Addr, size int64, timeout time.Duration, during func()) transferResult {
	t.Helper()
	var ln net.Listener
	if err := dstNS.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 5001).String())
		return err
	}); err != nil {
		t.Fatalf("listen on %s: %v", dst, err)
	}
	defer ln.Close()
	type received struct {
		n   int64
		sum []byte
		err error
	}
	got := make(chan received, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- received{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		h := sha256.New()
		n, err := io.Copy(h, c)
		got <- received{n: n, sum: h.Sum(nil), err: err}
	}()

	var conn net.Conn
	d := net.Dialer{Timeout: 20 * time.Second}
	if src.IsValid() { // else the address the routes give
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	if err := srcNS.Do(func() (err error) {
		conn, err = d.Dial("tcp", netip.AddrPortFrom(dst, 5001).String())
		return err
	}); err != nil {
		t.Fatalf("connect %s → %s: %v", src, dst, err)
	}
	start := time.Now()
	conn.SetDeadline(start.Add(timeout))
	rng := rand.NewChaCha8([32]byte{'x', 'd', 'p', 's', 'e', 'c'})
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var sent int64
	var sendErr error
	for sent < size {
		n := int64(len(buf))
		if size-sent < n {
			n = size - sent
		}
		rng.Read(buf[:n])
		h.Write(buf[:n])
		if _, sendErr = conn.Write(buf[:n]); sendErr != nil {
			break
		}
		if sent < 1<<20 && sent+n >= 1<<20 && during != nil {
			go during()
		}
		sent += n
	}
	if sendErr == nil {
		sendErr = conn.(*net.TCPConn).CloseWrite()
	}
	r := <-got
	res := transferResult{bytes: r.n, duration: time.Since(start)}
	conn.Close()
	if sendErr != nil {
		t.Fatalf("sending %s → %s: %v after %d bytes", src, dst, sendErr, sent)
	}
	if r.err != nil {
		t.Fatalf("receiving %s → %s: %v after %d bytes", src, dst, r.err, r.n)
	}
	if r.n != size || !bytes.Equal(r.sum, h.Sum(nil)) {
		t.Fatalf("TCP transfer %s → %s: received %d bytes with SHA-256 %x, sent %d with %x", src, dst, r.n, r.sum, size, h.Sum(nil))
	}
	return res
}
