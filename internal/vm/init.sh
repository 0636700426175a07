#!/bin/busybox sh
# The guest's /init (package vm): load the modules, mount the host's root
# read-only over 9p with tmpfs where the guest must write, run the command
# chrooted into it, print its exit status in a marker line, power off.
#
# Kernel command line parameters (read from /proc/cmdline; the dot keeps the
# kernel from handing them to init as arguments):
#   xdpsec.nonce=HEX   tags the marker lines, so output cannot forge them
#   xdpsec.run=BASE64  the shell script to run
#   xdpsec.work=PATH   mount the 9p share "work" read-write at PATH
#   xdpsec.debug=1     drop to a shell instead of powering off
#   xdpsec.verbose=1   say how long each step of the boot takes
# Markers (one per line, the host reads them from the serial console):
#   XDPSEC-VM-START <nonce> <uptime>   the command starts
#   XDPSEC-VM-EXIT <nonce> <status>    the command ended with status

/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "xdpsec-init: $*"; }

arg() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "xdpsec.$1="*) echo "${w#*=}" ;; esac
	done
}

nonce=$(arg nonce)
verbose=$(arg verbose)
trace() { [ -z "$verbose" ] || say "$(cut -d' ' -f1 /proc/uptime)s $*"; }

finish() {
	echo
	echo "XDPSEC-VM-EXIT $nonce $1"
	sync
	if [ "$(arg debug)" = 1 ]; then
		setsid cttyhack sh
	fi
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}

# Modules, one per line: name [optional]. One modprobe loads them all with
# their dependencies: a process per module would cost seconds under TCG.
echo /bin/modprobe >/proc/sys/kernel/modprobe
read -r _ _ rel _ </proc/version
required=
optional=
while read -r mod opt; do
	case "$opt" in
	optional) optional="$optional $mod" ;;
	*) required="$required $mod" ;;
	esac
done </lib/modules/load.list
trace "loading modules"
modprobe -a $required || say "modprobe: some modules did not load"
modprobe -a -q $optional 2>/dev/null

trace "modules loaded"
R=/newroot
mkdir -p $R
opts=trans=virtio,version=9p2000.L,msize=512000
if ! mount -t 9p -o "$opts,ro,cache=loose" hostroot $R; then
	say "cannot mount the host's root over 9p"
	finish 125
fi
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t bpf bpf $R/sys/fs/bpf
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
for d in /tmp /run /var/tmp /root /var/log /var/cache /var/lib; do
	[ -d "$R$d" ] && mount -t tmpfs -o mode=1777 tmpfs "$R$d"
done
# The guest's own module tree, for modinfo and modprobe in the chroot.
if [ -d $R/lib/modules ]; then
	mount -t tmpfs tmpfs $R/lib/modules && mkdir -p $R/lib/modules/$rel &&
		mount --bind /lib/modules/$rel $R/lib/modules/$rel
fi

work=$(arg work)
if [ -n "$work" ]; then
	mkdir -p "$R$work" 2>/dev/null
	if ! mount -t 9p -o "$opts" work "$R$work"; then
		say "cannot mount the work share at $work"
		finish 125
	fi
fi

trace "mounted"
mkdir -p $R/run/xdpsec-vm
arg run | base64 -d >$R/run/xdpsec-vm/run.sh || finish 125
hostname xdpsec-vm
ip link set lo up

read -r up _ </proc/uptime
echo "XDPSEC-VM-START $nonce $up"
chroot $R /bin/sh /run/xdpsec-vm/run.sh </dev/null 2>&1
finish $?
