package ike

import (
	"context"
	"fmt"
	"log/slog"
)

// infof and debugf format a log line only where the logger takes its
// level: with an IKE SA established per fraction of a millisecond, the
// lines that a daemon at charon's default levels drops cost more to
// format than most of the exchange.
func infof(l *slog.Logger, format string, args ...any) {
	if l.Enabled(context.Background(), slog.LevelInfo) {
		l.Info(fmt.Sprintf(format, args...))
	}
}

func debugf(l *slog.Logger, format string, args ...any) {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		l.Debug(fmt.Sprintf(format, args...))
	}
}

// debugOn reports whether l takes Debug lines: a caller whose arguments
// cost something to make (an SA's name) asks first.
func debugOn(l *slog.Logger) bool { return l.Enabled(context.Background(), slog.LevelDebug) }

// infoOn reports whether l takes Info lines: a line built of a message's
// or a proposal's summary is built only then.
func infoOn(l *slog.Logger) bool { return l.Enabled(context.Background(), slog.LevelInfo) }
