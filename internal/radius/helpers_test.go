package radius

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"

	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

// logBuffer collects a client's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testClient makes a client of fake servers with short timeouts.
func testClient(t *testing.T, mod func(*Config), servers ...Server) (*Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{
		Servers:       servers,
		Timeout:       60 * time.Millisecond,
		Tries:         2,
		NASIdentifier: "gw-test",
		Accounting:    true,
		FramedIP:      true,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", logs)
		}
	})
	return c, logs
}

func fakeServer(name string, s *radiustest.Server, secret string) Server {
	return Server{Name: name, Address: "127.0.0.1", AuthPort: s.Port(), AcctPort: s.Port(), Secret: NewSecret(secret)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eapAttrs splits an EAP packet into EAP-Message attributes.
func eapAttrs(eap []byte) radius.Attributes {
	p := &radius.Packet{}
	rfc2869.EAPMessage_Set(p, eap)
	return p.Attributes
}

// eapPacket makes an EAP packet of a code, id and type-data.
func eapPacket(code, id byte, data []byte) []byte {
	n := 4 + len(data)
	return append([]byte{code, id, byte(n >> 8), byte(n)}, data...)
}

func mustContain(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%q does not contain %q", s, p)
		}
	}
}
