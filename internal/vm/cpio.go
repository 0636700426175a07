package vm

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// cpio file modes (the st_mode type bits).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

// cpioWriter writes an archive in the "newc" format, the one the kernel
// unpacks as an initramfs (Documentation/driver-api/early-userspace/
// buffer-format.rst). Every entry is owned by root with mtime 0, so the
// same inputs give the same bytes.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{".": true, "/": true, "": true}}
}

// header writes one entry header and name, padded to 4 bytes.
func (c *cpioWriter) header(name string, mode uint32, size int) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	_, c.err = io.WriteString(c.w, hdr+name+"\x00"+pad4(len(hdr)+len(name)+1))
}

func (c *cpioWriter) data(b []byte) {
	if c.err != nil {
		return
	}
	if _, c.err = c.w.Write(b); c.err == nil {
		_, c.err = io.WriteString(c.w, pad4(len(b)))
	}
}

func pad4(n int) string { return strings.Repeat("\x00", (4-n%4)%4) }

// Dir adds a directory and any missing parents.
func (c *cpioWriter) Dir(name string) {
	name = strings.TrimPrefix(path.Clean(name), "/")
	if c.dirs[name] {
		return
	}
	c.Dir(path.Dir(name))
	c.dirs[name] = true
	c.header(name, modeDir|0o755, 0)
}

// File adds a regular file, making its parent directories.
func (c *cpioWriter) File(name string, perm uint32, b []byte) {
	name = strings.TrimPrefix(path.Clean(name), "/")
	c.Dir(path.Dir(name))
	c.header(name, modeFile|perm, len(b))
	c.data(b)
}

// Symlink adds a symbolic link.
func (c *cpioWriter) Symlink(name, target string) {
	name = strings.TrimPrefix(path.Clean(name), "/")
	c.Dir(path.Dir(name))
	c.header(name, modeSymlink|0o777, len(target))
	c.data([]byte(target))
}

// Close writes the trailer.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0)
	return c.err
}
