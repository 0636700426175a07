package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Subsystems of the daemon's log, as charon names its groups.
var Subsystems = []string{"ike", "knl", "cfg", "net", "dmn"}

// Logs hands out one logger per subsystem, each with its own level as
// charon's filelog does: --log ike=2,knl=1. Levels: -1 silent, 0 warnings
// and errors only, 1 the main events (default), 2 details of every
// exchange and call, 3 and 4 everything.
type Logs struct {
	w      io.Writer
	mu     *sync.Mutex
	levels map[string]int
	// tap, if set, is given every line written (the VICI log events).
	tap *atomic.Pointer[func(LogRecord)]
}

// LogRecord is a log line for a tap: charon's group and level, the IKE
// SA it is about ("gw[1]", or ""), and the message.
type LogRecord struct {
	Group string // IKE, CFG, KNL, NET, DMN
	Level int    // charon's 0..4
	SA    string
	Msg   string
}

// SetTap has every line written also given to f (nil: to nobody). f runs
// on the logging goroutine, possibly with the engine locked: it must not
// block or log.
func (l *Logs) SetTap(f func(LogRecord)) {
	if f == nil {
		l.tap.Store(nil)
		return
	}
	l.tap.Store(&f)
}

// charonLevel maps a slog level back onto charon's scale.
func charonLevel(lv slog.Level) int {
	switch {
	case lv >= slog.LevelWarn:
		return 0
	case lv >= slog.LevelInfo:
		return 1
	case lv >= slog.LevelDebug:
		return 2
	}
	return 3
}

// ParseLogLevels reads "ike=2,knl=1,cfg=1"; "any=N" or "default=N" sets
// every subsystem not named.
func ParseLogLevels(s string) (map[string]int, error) {
	out := map[string]int{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("log level %q: want subsystem=level", item)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < -1 || n > 4 {
			return nil, fmt.Errorf("log level %q: level must be -1 to 4", item)
		}
		if k == "default" {
			k = "any"
		}
		if k != "any" && !contains(Subsystems, k) {
			return nil, fmt.Errorf("log level %q: unknown subsystem %q (want %s or any)", item, k, strings.Join(Subsystems, ", "))
		}
		out[k] = n
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// NewLogs writes to w with the given levels (nil: 1 everywhere).
func NewLogs(w io.Writer, levels map[string]int) *Logs {
	if levels == nil {
		levels = map[string]int{}
	}
	return &Logs{w: w, mu: &sync.Mutex{}, levels: levels, tap: &atomic.Pointer[func(LogRecord)]{}}
}

// Level of a subsystem, charon's scale.
func (l *Logs) Level(subsys string) int {
	if n, ok := l.levels[subsys]; ok {
		return n
	}
	if n, ok := l.levels["any"]; ok {
		return n
	}
	return 1
}

// slogLevel maps charon's levels onto slog's.
func slogLevel(n int) slog.Level {
	switch {
	case n < 0:
		return slog.LevelError + 100
	case n == 0:
		return slog.LevelWarn
	case n == 1:
		return slog.LevelInfo
	case n == 2:
		return slog.LevelDebug
	}
	return slog.LevelDebug - 8
}

// Logger returns the logger of a subsystem.
func (l *Logs) Logger(subsys string) *slog.Logger {
	return slog.New(&lineHandler{logs: l, tag: strings.ToUpper(subsys), min: slogLevel(l.Level(subsys))})
}

// lineHandler writes charon-like lines: "15:04:05 [IKE] <gw[1]> message k=v".
type lineHandler struct {
	logs  *Logs
	tag   string
	min   slog.Level
	sa    string
	attrs string
}

func (h *lineHandler) Enabled(_ context.Context, lv slog.Level) bool { return lv >= h.min }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("Jan _2 15:04:05"))
	b.WriteString(" [" + h.tag + "] ")
	if h.sa != "" {
		b.WriteString("<" + h.sa + "> ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	b.WriteByte('\n')
	if tap := h.logs.tap.Load(); tap != nil {
		msg := r.Message + h.attrs
		r.Attrs(func(a slog.Attr) bool {
			msg += fmt.Sprintf(" %s=%v", a.Key, a.Value)
			return true
		})
		(*tap)(LogRecord{Group: h.tag, Level: charonLevel(r.Level), SA: h.sa, Msg: msg})
	}
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	_, err := io.WriteString(h.logs.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	for _, a := range as {
		if a.Key == "ike_sa" {
			n.sa = a.Value.String()
			continue
		}
		n.attrs += fmt.Sprintf(" %s=%v", a.Key, a.Value)
	}
	return &n
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
