package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/demo"
)

// TestDemo runs `make demo`'s guest part (package internal/demo, what
// cmd/xdpsec-demo runs with -local): the example configuration comes up,
// the ping is answered, the TCP transfer arrives, both gateways show the
// IKE SA ESTABLISHED and the CHILD_SA INSTALLED with traffic counted by
// the kernel and by xdp_wan and tc_lan, and nothing of the demo is left.
// Cancelled (Ctrl-C) with the daemons running, it cleans up as well.
func TestDemo(t *testing.T) {
	t.Run("complete", func(t *testing.T) {
		out := &syncBuffer{}
		start := time.Now()
		rep, err := demo.Run(context.Background(), demo.Options{Xdpsec: xdpsecBin(t), Out: out, TransferBytes: 4 << 20})
		t.Logf("demo output:\n%s", out)
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
		t.Logf("demo: tunnel up in %v, TCP %.1f MiB/s, whole demo %v", rep.Established.Round(time.Millisecond),
			rep.Transfer.MBps(), time.Since(start).Round(time.Millisecond))
		if rep.PingsAnswered != rep.PingsSent {
			t.Errorf("%d of %d pings answered", rep.PingsAnswered, rep.PingsSent)
		}
		for _, want := range []string{"ESTABLISHED", "INSTALLED", "gw-a# xdpsec list-sas", "gw-b# xdpsec stats", "rx_seen", "cleaning up"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the demo's output lacks %q", want)
			}
		}
		for i, g := range rep.Gateways {
			name := string(rune('A' + i))
			if len(g.SAs) != 1 || g.SAs[0].State != "ESTABLISHED" || len(g.SAs[0].Children) != 1 || g.SAs[0].Children[0].State != "INSTALLED" {
				t.Errorf("gateway %s: want one ESTABLISHED IKE SA with one INSTALLED CHILD_SA: %+v", name, g.SAs)
				continue
			}
			c := g.SAs[0].Children[0]
			if c.PacketsIn == 0 || c.PacketsOut == 0 || c.RxSeenPackets < c.PacketsIn {
				t.Errorf("gateway %s: CHILD_SA %s in %d packets (rx_seen %d), out %d", name, c.Name, c.PacketsIn, c.RxSeenPackets, c.PacketsOut)
			}
			for _, k := range []string{"rx_seen", "protect"} {
				if g.Counters[k] == 0 {
					t.Errorf("gateway %s: stats counter %s is 0", name, k)
				}
			}
			if g.Counters["no_sa"] != 0 {
				t.Errorf("gateway %s: xdp_wan dropped %d packets as no_sa", name, g.Counters["no_sa"])
			}
		}
		if a := rep.Gateways[0].SAs; len(a) == 1 && len(a[0].Children) == 1 && a[0].Children[0].BytesOut < 4<<20 {
			t.Errorf("gateway A sent %d bytes on the CHILD_SA, want at least the transfer's 4 MiB", a[0].Children[0].BytesOut)
		}
		requireDemoGone(t)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &syncBuffer{onLine: func(l string) {
			if strings.HasPrefix(l, "==> gateway A initiates") {
				cancel()
			}
		}}
		_, err := demo.Run(ctx, demo.Options{Xdpsec: xdpsecBin(t), Out: out, TransferBytes: 1 << 30})
		t.Logf("demo output:\n%s", out)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled demo: %v, want it to stop on the cancel", err)
		}
		requireDemoGone(t)
	})
}

// requireDemoGone fails if a demo's namespace, pin directory or temporary
// directory is left.
func requireDemoGone(t *testing.T) {
	t.Helper()
	for _, pattern := range []string{"/run/netns/xdpsec-demo-*", "/sys/fs/bpf/xdpsec-demo-*", filepath.Join(os.TempDir(), "xdpsec-demo-*")} {
		if left, _ := filepath.Glob(pattern); len(left) > 0 {
			t.Errorf("the demo left %v", left)
		}
	}
}

// syncBuffer is a buffer the demo's goroutines write to; onLine, if set,
// sees each line as it completes.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	line   []byte
	onLine func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onLine != nil {
		for _, c := range p {
			if c == '\n' {
				s.onLine(string(s.line))
				s.line = s.line[:0]
			} else {
				s.line = append(s.line, c)
			}
		}
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
