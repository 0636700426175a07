#!/bin/bash
# Builds charon with strongSwan's load-tester plugin, once, into DIR
# (default .cache/charon-lt): the like-for-like responder of `make bench`,
# run with `load-tester { enable = yes; fake_kernel = yes }` so that it
# installs nothing in a kernel, as our dry-run daemon does not.
#
# The source is Debian's own: the .orig tarball and Debian's patches of
# the strongswan-charon version installed (or, where the mirror no longer
# holds that revision, another Debian revision of the same upstream
# version), fetched with apt-get source through deb-src copies of this
# machine's apt sources kept under DIR (the system's lists are left
# alone). Build dependencies are Debian packages. Only the plugins the
# benchmark loads are built. A second run finds DIR/inst/.built and does
# nothing; remove DIR to rebuild.
set -euo pipefail

dir=$(realpath -m "${1:-.cache/charon-lt}")
inst=$dir/inst
if [ -f "$inst/.built" ] && [ -x "$inst/libexec/ipsec/charon" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "charon-lt: needs root to install the build dependencies; the load-tester comparison will not run" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
deps="gcc make pkg-config libssl-dev dpkg-dev bzip2 xz-utils"
missing=""
for p in $deps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "charon-lt: installing$missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# deb-src twins of the machine's own apt sources, in a private apt state.
apt=$dir/apt
rm -rf "$apt"
mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial"
: >"$apt/sources.list"
if [ -f /etc/apt/sources.list ]; then
	sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$apt/sources.list"
fi
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt/sources.list.d/$(basename "$f")"
done
for f in /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >"$apt/sources.list.d/$(basename "$f")"
done
aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
	-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
apt-get "${aptopts[@]}" update -qq

want=$(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null || true)
upstream=${want%%-*}
src=$dir/src
rm -rf "$src"
mkdir -p "$src"
got=""
# The installed revision first, then the others of the same upstream
# version the archive offers (a security mirror may hold only the newest).
for v in $want $(apt-cache "${aptopts[@]}" showsrc strongswan | sed -n 's/^Version: //p'); do
	[ -z "$upstream" ] || [ "${v%%-*}" = "$upstream" ] || continue
	if (cd "$src" && apt-get "${aptopts[@]}" source -qq --download-only "strongswan=$v" >/dev/null 2>&1); then
		got=$v
		break
	fi
done
if [ -z "$got" ]; then
	echo "charon-lt: no strongswan source package ${upstream:+of $upstream }found on the mirror" >&2
	exit 1
fi
echo "charon-lt: building charon with load-tester from Debian's strongswan $got source"
# dpkg-source applies Debian's patches (debian/patches) to the tarball.
(cd "$src" && dpkg-source -x "strongswan_${got#*:}.dsc" tree >/dev/null 2>&1)

# IKEv2 (not built with --disable-defaults) and the plugins the
# benchmark's responder loads: openssl (AES-GCM, SHA-2,
# HMAC, X25519, MODP), kdf (PRF+ on top of those: this build of the
# openssl plugin has none), random, nonce, the
# socket, kernel-netlink (load-tester depends on a kernel-net interface),
# VICI and swanctl to load the same swanctl.conf as ours, load-tester.
cd "$src/tree"
./configure --prefix="$inst" --sysconfdir="$inst/etc" --disable-defaults \
	--enable-charon --enable-ikev2 --enable-swanctl --enable-vici --enable-openssl --enable-nonce --enable-random --enable-kdf \
	--enable-socket-default --enable-kernel-netlink --enable-load-tester --disable-gmp >"$dir/configure.log" 2>&1 ||
	{ tail -20 "$dir/configure.log" >&2; exit 1; }
make -j"$(nproc)" >"$dir/make.log" 2>&1 || { tail -30 "$dir/make.log" >&2; exit 1; }
make install >"$dir/install.log" 2>&1 || { tail -20 "$dir/install.log" >&2; exit 1; }
echo "$got" >"$inst/VERSION"
touch "$inst/.built"
rm -rf "$src" "$apt"
echo "charon-lt: charon with load-tester in $inst"
