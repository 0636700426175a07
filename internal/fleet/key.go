package fleet

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"
)

// LoadKey reads the fleet key from path: 32 raw bytes, or 64 hexadecimal
// characters (a trailing newline allowed), as `head -c 32 /dev/urandom`
// or `openssl rand -hex 32` make it. The file must belong to root or to
// the user running us and be neither readable nor writable by group or
// others: the key opens every record of the fleet.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	defer f.Close()
	if err := checkPrivateFile(f, path); err != nil {
		return nil, fmt.Errorf("fleet key %w", err)
	}
	// Room for 64 hex characters and a CRLF, and one byte more to see
	// that a file is too long.
	buf := make([]byte, 67)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	b := buf[:n]
	if len(b) == 32 {
		return append([]byte(nil), b...), nil
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if len(b) == 64 {
		key := make([]byte, 32)
		if _, err := hex.Decode(key, b); err == nil {
			return key, nil
		}
		clear(key)
		return nil, fmt.Errorf("fleet key %s: 64 characters that are not hexadecimal", path)
	}
	return nil, fmt.Errorf("fleet key %s: %d bytes; want 32 raw bytes or 64 hexadecimal characters", path, n)
}

// checkPrivate says why the file at path may not hold a secret: not a
// regular file, accessible by group or others, or another user's.
func checkPrivate(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := checkPrivateFile(f, path); err != nil {
		return fmt.Errorf("file %w", err)
	}
	return nil
}

// checkPrivateFile is checkPrivate of an open file; the error starts
// with its path.
func checkPrivateFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is accessible by group or others (mode %04o): chmod 600 %s", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Getuid() {
			return fmt.Errorf("%s belongs to uid %d, not to root or to us (uid %d): chown it", path, uid, os.Getuid())
		}
	}
	return nil
}
