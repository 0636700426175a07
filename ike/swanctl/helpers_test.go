package swanctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// copyTestdata copies testdata/dir to a temporary directory with every file
// at mode 0600 (git does not keep modes) and returns the main file's path.
func copyTestdata(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", dir)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, "swanctl.conf")
}

// memFS builds an in-memory file system under /etc/xdpsec from name ->
// content pairs, every file at mode 0600.
func memFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, content := range files {
		m[strings.TrimPrefix("etc/xdpsec/"+name, "/")] = &fstest.MapFile{Data: []byte(content), Mode: 0o600}
	}
	return m
}

const mainFile = "/etc/xdpsec/swanctl.conf"

// loadMem loads /etc/xdpsec/swanctl.conf from files.
func loadMem(t *testing.T, files map[string]string) (*Config, error) {
	t.Helper()
	return LoadFS(FromFS(memFS(files)), mainFile)
}

func mustLoadMem(t *testing.T, files map[string]string) *Config {
	t.Helper()
	cfg, err := loadMem(t, files)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

// errorLines returns the lines of a joined error.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// configErrors returns the *Error values joined in err.
func configErrors(err error) []*Error {
	var out []*Error
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			var ce *Error
			if errors.As(e, &ce) {
				out = append(out, ce)
			}
		}
	}
	return out
}

// lifetime is a child's lifetimes, compared as one value.
type lifetime struct {
	RekeyTime, LifeTime, RandTime          time.Duration
	RekeyBytes, LifeBytes, RandBytes       uint64
	RekeyPackets, LifePackets, RandPackets uint64
}

func lifetimeOf(ch *Child) lifetime {
	return lifetime{ch.RekeyTime, ch.LifeTime, ch.RandTime, ch.RekeyBytes, ch.LifeBytes, ch.RandBytes,
		ch.RekeyPackets, ch.LifePackets, ch.RandPackets}
}
