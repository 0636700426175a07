#!/bin/bash
# Makes a Debian 13 (trixie) chroot with strongSwan 6 (Debian's
# strongswan-charon, strongswan-swanctl and plugin packages) in DIR/root
# (default .cache/sw6/root), once: the interop tests that ask for charon 6
# run its /usr/lib/ipsec/charon and /usr/sbin/swanctl chrooted there
# (interop/sw6_test.go). Only Debian's packages, with mmdebstrap (which
# `make deps` installs); the trixie keys come with the host's
# debian-archive-keyring. The mirrors are the ones this machine's apt uses
# for its own release (and its -security suite), else mmdebstrap's
# defaults. A second run finds DIR/.built (naming the packages it was
# made with) and does nothing; remove DIR to make it again (about 20
# seconds and 130 MB).
#
# Debian's build leaves out strongSwan's ML-KEM plugin (ml). The second
# stage builds that one plugin from Debian's strongswan source package of
# the same version (with Debian's patches), in a throwaway trixie build
# chroot (gcc, libssl-dev), and puts it beside Debian's plugins in the
# chroot; DIR/ML then holds the version it was built from (about a minute
# more). Where that fails the chroot stays as Debian made it, and the tests
# that need ML-KEM in charon skip; a later run tries again.
set -euo pipefail

dir=$(realpath -m "${1:-.cache/sw6}")
root=$dir/root
suite=trixie
# charon and swanctl, and the plugins the tests load (the same packages
# as charon 5.9.8's on the host, see the Makefile's APT_PACKAGES).
packages=strongswan-charon,strongswan-swanctl,libstrongswan-standard-plugins,libstrongswan-extra-plugins,libcharon-extra-plugins,libcharon-extauth-plugins

plugin=$root/usr/lib/ipsec/plugins/libstrongswan-ml.so
if [ "$(cat "$dir/.built" 2>/dev/null)" = "$suite $packages" ] && [ -x "$root/usr/lib/ipsec/charon" ] && [ -x "$root/usr/sbin/swanctl" ] &&
	[ -f "$plugin" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "strongswan6: needs root to make the $suite chroot; the strongSwan 6 interop tests will skip" >&2
	exit 1
fi
# mmdebstrap, and trixie's archive keys (debian-archive-keyring of Debian
# 12 has them since 2023.3+deb12u2).
if ! command -v mmdebstrap >/dev/null || ! ls /usr/share/keyrings/debian-archive-$suite-*.gpg >/dev/null 2>&1; then
	echo "strongswan6: installing mmdebstrap and debian-archive-keyring"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends mmdebstrap debian-archive-keyring >/dev/null
fi

# The archive and security mirrors of this machine's own release, as
# apt knows them (deb822 or one-line sources alike).
mirrors=()
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -n "$codename" ]; then
	targets=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null | sort -u || true)
	archive=$(awk -v s="$codename" '$2 == s { print $1; exit }' <<<"$targets")
	security=$(awk -v s="$codename-security" '$2 == s { print $1; exit }' <<<"$targets")
	if [ -n "$archive" ]; then
		mirrors+=("deb $archive $suite main" "deb $archive $suite-updates main")
		[ -z "$security" ] || mirrors+=("deb $security $suite-security main")
	fi
fi

new=$dir/root.new
build=$dir/build
mkdir -p "$dir"
# A failed run may leave a half-made tree: never remove one that still
# has something mounted inside.
cleanup() {
	for d in "$new" "$build"; do
		if [ -d "$d" ] && ! grep -q " $d/" /proc/self/mounts; then rm -rf "$d"; fi
	done
}
trap cleanup EXIT
cleanup

if [ "$(cat "$dir/.built" 2>/dev/null)" != "$suite $packages" ] || [ ! -x "$root/usr/lib/ipsec/charon" ] || [ ! -x "$root/usr/sbin/swanctl" ]; then
	echo "strongswan6: making a Debian $suite chroot with strongSwan 6 in $root"
	# Essential packages and the strongSwan ones with their dependencies;
	# documentation left out.
	nice mmdebstrap --mode=root --variant=essential --include="$packages" \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		"$suite" "$new" "${mirrors[@]}" >"$dir/mmdebstrap.log" 2>&1 ||
		{ tail -20 "$dir/mmdebstrap.log" >&2; exit 1; }
	rm -rf "$root" "$dir/.built" "$dir/ML"
	mv "$new" "$root"
	chroot "$root" dpkg-query -W -f='${Version}' strongswan-charon >"$dir/VERSION"
	echo "$suite $packages" >"$dir/.built"
	echo "strongswan6: strongSwan $(cat "$dir/VERSION") in $root"
fi

# The ml plugin, from the source of the version installed.
version=$(cat "$dir/VERSION")
echo "strongswan6: building strongSwan's ml plugin (ML-KEM) from Debian's strongswan $version source"
srcmirrors=()
for m in "${mirrors[@]}"; do srcmirrors+=("$m" "deb-src ${m#deb }"); done
ml() {
	nice mmdebstrap --mode=root --variant=apt --include=gcc,libc6-dev,make,pkg-config,libssl-dev,dpkg-dev,bzip2,xz-utils \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		"$suite" "$build" "${srcmirrors[@]}" || return 1
	# apt-get source applies Debian's patches. The version may sit in
	# the archive's and the security suite's indexes while only one of
	# them has the files: the security suite's first. The generated
	# autotools files are made newer than what the patches touched, so
	# that make does not want automake. Only the ml plugin is built: it
	# needs libstrongswan's headers and nothing else.
	nice chroot "$build" sh -ec '
		cd /root
		apt-get update -qq
		apt-get source -qq "strongswan/$1-security" >/dev/null 2>&1 && [ -d "strongswan-${2%%-*}" ] && [ -f "strongswan_${2#*:}.dsc" ] ||
			{ rm -rf strongswan*; apt-get source -qq "strongswan=$2" >/dev/null; }
		cd "strongswan-${2%%-*}"
		touch aclocal.m4; sleep 1; touch configure config.h.in; find . -name Makefile.in -exec touch {} +
		./configure --prefix=/usr --sysconfdir=/etc --libdir=/usr/lib --libexecdir=/usr/lib \
			--disable-defaults --disable-gmp --enable-ml >/root/configure.log 2>&1 || { tail -20 /root/configure.log >&2; exit 1; }
		make -C src/libstrongswan/plugins/ml
	' sh "$suite" "$version" || return 1
	cp "$build/root/strongswan-${version%%-*}/src/libstrongswan/plugins/ml/.libs/libstrongswan-ml.so" "$plugin.new" &&
		mv "$plugin.new" "$plugin"
}
if ml >"$dir/ml.log" 2>&1; then
	echo "$version" >"$dir/ML"
	echo "strongswan6: ml plugin in $plugin"
else
	tail -20 "$dir/ml.log" >&2
	echo "strongswan6: building the ml plugin failed (see $dir/ml.log); charon 6 has no ML-KEM" >&2
fi
