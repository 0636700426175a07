package dataplane

import (
	"io"
	"log/slog"
	"net/netip"
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

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
