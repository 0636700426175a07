package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDaemonReplayWindow: a 50 MB transfer from LAN A to LAN B while the
// ESP sequence numbers of A's outbound SA are recorded on A's WAN as A
// sends them and on B's WAN as B receives them (after xdp_wan). The
// reordering each shows, and what B's replay window refused
// (XfrmInStateSeqError), say where replay drops come from. With SA
// steering on (the default) and the default replay_window, B must refuse
// nothing and xdp_wan drop nothing as no_sa; the other variants are
// measurements, logged.
func TestDaemonReplayWindow(t *testing.T) {
	for _, v := range []struct {
		name   string
		conf   tunnelConf
		assert bool
	}{
		{"steering default window", tunnelConf{ifID: 0x4b}, true},
		{"steering window 32", tunnelConf{ifID: 0x4c, childExtra: "replay_window = 32\n"}, false},
		{"no steering window 32", tunnelConf{ifID: 0x4d, saCPU: "none", childExtra: "replay_window = 32\n"}, false},
		{"no steering window 1024", tunnelConf{ifID: 0x4e, saCPU: "none", childExtra: "replay_window = 1024\n"}, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			if v.assert && runtime.NumCPU() < 2 {
				t.Skipf("skipped: the guest has %d CPU, so SA steering has no CPUs to spread over and this check could not fail (vmtest runs this test in its guest with two)", runtime.NumCPU())
			}
			dp := newDaemonPair(t, ipv4, v.conf)
			p := dp.pair
			ca := dp.ga.child("net")
			spi := parseSPI(t, ca.SPIOut)
			out, _ := run(p.b.Netns, "", "ip", "xfrm", "state", "get", "src", p.a.outer.String(), "dst", p.b.outer.String(), "proto", "esp", "spi", "0x"+ca.SPIOut)
			t.Logf("site B's inbound SA: %s", out)
			noSA := [2]uint64{dp.ga.counter("no_sa"), dp.gb.counter("no_sa")}
			seqErr := xfrmStat(t, p.b.Netns)["XfrmInStateSeqError"]
			sent := recordESPSeq(t, p.a, p.a.outer, spi)
			recv := recordESPSeq(t, p.b, p.a.outer, spi)
			res := tcpTransfer(t, p.a.lanH, p.a.lanA, p.b.lanH, p.b.lanA, 50<<20, 10*time.Minute, nil)
			t.Logf("TCP LAN A → LAN B through ESP: %v", res)
			time.Sleep(300 * time.Millisecond)
			s, r := sent.stop(), recv.stop()
			refused := xfrmStat(t, p.b.Netns)["XfrmInStateSeqError"] - seqErr
			t.Logf("A's WAN as sent: %v", s)
			t.Logf("B's WAN as received: %v", r)
			t.Logf("B's replay window refused %d packets (XfrmInStateSeqError)", refused)
			for i, g := range []*gateway{dp.ga, dp.gb} {
				d := g.counter("no_sa") - noSA[i]
				if d != 0 && v.assert {
					t.Errorf("site %s: xdp_wan dropped %d packets as no_sa", g.name, d)
				}
			}
			if v.assert && refused != 0 {
				t.Errorf("B refused %d packets as outside its replay window (XfrmInStateSeqError) with SA steering on", refused)
			}
		})
	}
}

// espSeqRecorder records the sequence numbers of one SA's ESP packets on
// a site's WAN (AF_PACKET: outgoing ones as they leave, incoming ones
// after XDP) and how far each arrived behind the highest seen before it.
type espSeqRecorder struct {
	fd   int
	done chan struct{}
	wg   sync.WaitGroup

	packets, late, maxLate uint64
	lateOver               map[uint64]uint64 // packets a window of 32, 128, 256, 1024 refuses
	highest                uint32
}

func (r *espSeqRecorder) String() string {
	var st unix.TpacketStats
	if s, err := unix.GetsockoptTpacketStats(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		st = *s
	}
	return fmt.Sprintf("%d ESP packets, %d behind a higher sequence number, at most %d behind; behind by 32 or more %d, 128 or more %d, 256 or more %d, 1024 or more %d (capture dropped %d)",
		r.packets, r.late, r.maxLate, r.lateOver[32], r.lateOver[128], r.lateOver[256], r.lateOver[1024], st.Drops)
}

func recordESPSeq(t *testing.T, s *site, src netip.Addr, spi uint32) *espSeqRecorder {
	t.Helper()
	r := &espSeqRecorder{done: make(chan struct{}), lateOver: map[uint64]uint64{}}
	err := s.Do(func() error {
		ifc, err := net.InterfaceByName(s.wan)
		if err != nil {
			return err
		}
		// ETH_P_ALL: a socket of one protocol sees incoming packets only.
		if r.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		// In the kernel: IPv4 without options, ESP, the SPI; 28 bytes
		// (to the sequence number) of each, nothing else.
		filter := []unix.SockFilter{
			{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 0},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 5, K: 0x45},
			{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: unix.IPPROTO_ESP},
			{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 20},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: spi},
			{Code: unix.BPF_RET | unix.BPF_K, K: 28},
			{Code: unix.BPF_RET | unix.BPF_K, K: 0},
		}
		if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
			return fmt.Errorf("attach filter: %w", err)
		}
		return unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index})
	})
	if err != nil {
		t.Fatalf("capture on site %s: %v", s.name, err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 64) // the headers: the rest is cut off
		for {
			select {
			case <-r.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(r.fd, buf, 0)
			if err != nil || n < 28 { // ESP header
				continue
			}
			esp, ok := espFrom(buf[:n], src, spi)
			if !ok || len(esp) < 8 {
				continue
			}
			seq := binary.BigEndian.Uint32(esp[4:])
			r.packets++
			if seq < r.highest {
				behind := uint64(r.highest - seq)
				r.late++
				r.maxLate = max(r.maxLate, behind)
				for _, w := range []uint64{32, 128, 256, 1024} {
					if behind >= w {
						r.lateOver[w]++
					}
				}
			} else {
				r.highest = seq
			}
		}
	}()
	t.Cleanup(func() { r.stop(); unix.Close(r.fd) })
	return r
}

// stop ends the recording (once) and returns the recorder.
func (r *espSeqRecorder) stop() *espSeqRecorder {
	select {
	case <-r.done:
	default:
		close(r.done)
		r.wg.Wait()
	}
	return r
}
