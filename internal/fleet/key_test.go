package fleet

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFleetLoadKey(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{0xa5}, 32)
	raw[31] = '\n' // a raw key may end in a newline byte: still 32 bytes
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hexKey := hex.EncodeToString(raw)
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
		want []byte
		err  string
	}{
		{"raw", raw, 0o600, raw, ""},
		{"raw-readonly", raw, 0o400, raw, ""},
		{"hex", []byte(hexKey), 0o600, raw, ""},
		{"hex-newline", []byte(hexKey + "\n"), 0o600, raw, ""},
		{"hex-crlf", []byte(strings.ToUpper(hexKey) + "\r\n"), 0o600, raw, ""},
		{"group-readable", raw, 0o640, nil, "accessible by group or others (mode 0640): chmod 600"},
		{"other-readable", raw, 0o604, nil, "mode 0604"},
		{"group-writable", raw, 0o620, nil, "mode 0620"},
		{"short", raw[:31], 0o600, nil, "31 bytes; want 32 raw bytes or 64 hexadecimal"},
		{"long", append(raw, raw...), 0o600, nil, "want 32 raw bytes or 64 hexadecimal"},
		{"not-hex", []byte(strings.Repeat("zz", 32)), 0o600, nil, "not hexadecimal"},
		{"empty", nil, 0o600, nil, "0 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadKey(write(tc.name, tc.data, tc.mode))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), hexKey[:16]) {
					t.Fatalf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v; want %x", got, err, tc.want)
			}
		})
	}
	t.Run("other-owner", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("skipped: giving a file to another user needs root")
		}
		p := write("nobody", raw, 0o600)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("a key of another user: %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := LoadKey(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("a directory: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadKey(filepath.Join(dir, "none")); err == nil || !os.IsNotExist(errorsUnwrapAll(err)) {
			t.Fatalf("a missing file: %v", err)
		}
	})
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}
