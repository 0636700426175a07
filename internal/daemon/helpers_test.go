package daemon

import (
	"net/netip"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps"
	"io"
	"log/slog"
	"testing"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

func testLogger(t *testing.T) *slog.Logger { return logTo(testWriter{t}) }

func logTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type discardSender struct{}

func (discardSender) Send(ike.Datagram) error { return nil }

var spiRangeZero = maps.SPIRange{}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
