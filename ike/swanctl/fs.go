package swanctl

import (
	"io/fs"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FS is what the loader reads: files, their modes and directory listings.
// Names are slash-separated paths as they appear in the configuration,
// normally absolute.
type FS interface {
	ReadFile(name string) ([]byte, error)
	Stat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// Glob returns the names matching pattern (path.Match syntax), sorted.
	Glob(pattern string) ([]string, error)
}

// OSFS is the host's file system.
type OSFS struct{}

func (OSFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (OSFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (OSFS) Glob(pattern string) ([]string, error)      { return filepath.Glob(pattern) }

// FromFS adapts an io/fs file system (for example testing/fstest.MapFS) so
// that absolute names "/etc/x" are looked up as "etc/x" in it.
func FromFS(fsys fs.FS) FS { return ioFS{fsys} }

type ioFS struct{ fsys fs.FS }

func (f ioFS) name(n string) string {
	n = strings.TrimPrefix(path.Clean(n), "/")
	if n == "" {
		return "."
	}
	return n
}

func (f ioFS) ReadFile(name string) ([]byte, error)  { return fs.ReadFile(f.fsys, f.name(name)) }
func (f ioFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(f.fsys, f.name(name)) }
func (f ioFS) ReadDir(name string) ([]fs.DirEntry, error) {
	return fs.ReadDir(f.fsys, f.name(name))
}

func (f ioFS) Glob(pattern string) ([]string, error) {
	abs := strings.HasPrefix(pattern, "/")
	m, err := fs.Glob(f.fsys, f.name(pattern))
	if err != nil || !abs {
		return m, err
	}
	for i := range m {
		m[i] = "/" + m[i]
	}
	return m, nil
}

// secretModeMask are the permission bits a file holding secrets must not
// have: read or write for group or others.
const secretModeMask fs.FileMode = 0o066

// checkSecretFile refuses a secrets-bearing file that group or others may
// read or write.
func checkSecretFile(fsys FS, name string) error {
	fi, err := fsys.Stat(name)
	if err != nil {
		return wrapErr(ErrPermissions, err)
	}
	if perm := fi.Mode().Perm(); perm&secretModeMask != 0 {
		return wrapf(ErrPermissions, "permissions %04o for %q are too open: it holds secrets and must not be readable or writable by group or others (chmod 600)", uint32(perm), name)
	}
	return checkOwner(fi, name, "it holds secrets")
}

// checkOwner refuses a file that belongs to neither root nor the user
// the daemon runs as: its owner may rewrite it (or read it, whatever its
// mode), so its connections and secrets are theirs. Files without an
// owner (an io/fs test file system) pass.
func checkOwner(fi fs.FileInfo, name, why string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == os.Geteuid() {
		return nil
	}
	owner := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(owner); err == nil {
		owner += " (" + u.Username + ")"
	}
	me := "root"
	if os.Geteuid() != 0 {
		me = "root or uid " + strconv.Itoa(os.Geteuid())
	}
	return wrapf(ErrPermissions, "%q belongs to uid %s, not to %s: %s and its owner may change it (chown root %s)", name, owner, me, why, name)
}

// CheckFileOwner refuses a file on disk that belongs to neither root nor
// the daemon's user, saying why it matters (certificates: a CA that
// another user may replace is theirs to trust).
func CheckFileOwner(name, why string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return wrapErr(ErrPermissions, err)
	}
	return checkOwner(fi, name, why)
}

// checkConfigFile refuses a configuration file another user owns.
func checkConfigFile(fsys FS, name string) error {
	fi, err := fsys.Stat(name)
	if err != nil {
		return wrapErr(ErrPermissions, err)
	}
	return checkOwner(fi, name, "it configures the daemon")
}
