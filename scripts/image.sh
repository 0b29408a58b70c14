#!/usr/bin/env bash
# Builds the small Debian base image mkvm boots (qcow2), from Debian's packages with mmdebstrap:
# no cloud image is downloaded. Debian 13 (trixie) by default, Debian 12 (bookworm) on request.
# Prints the image's path on stdout; logs go to stderr.
#
#   scripts/image.sh                 # -> /var/cache/hardway/images/debian-13-<hash>.qcow2
#   scripts/image.sh --debian 12     # -> /var/cache/hardway/images/debian-12-<hash>.qcow2
#   HARDWAY_IMAGE_DEBIAN=12 HARDWAY_IMAGE_DIR=/srv/img scripts/image.sh
#
# Environment: HARDWAY_IMAGE_DEBIAN (13 or 12; --debian wins), HARDWAY_IMAGE_MIRROR (Debian's
# archive, default http://deb.debian.org/debian, the mirror this machine's apt sources use; every
# suite answers there), HARDWAY_IMAGE_SECURITY_MIRROR (http://deb.debian.org/debian-security),
# HARDWAY_IMAGE_DIR (/var/cache/hardway/images), HARDWAY_IMAGE_EXTRA (more packages, space
# separated).
#
# The image carries what every role's services need, so one image serves every node and every
# run, with or without Kubernetes binaries: etcd-server and etcd-client (etcd; etcdctl for
# flannel-config and the smoke tests), containerd, runc and the CNI plugins (workers; Debian's
# containerd is 1.7 in trixie and 1.6 in bookworm: CRI config version 2, for a v1.35 document),
# iptables, conntrack and socat (kube-proxy, port-forward), nftables (the masquerade table),
# haproxy and keepalived (load balancers), ca-certificates (image pulls). The services those
# packages ship are disabled in the image: each starts only when node-push has put its
# configuration there (`systemctl enable --now`), never first with Debian's defaults.
#
# The image is cached under the content hash of this script, the suite, the mirrors and the
# extra packages: edit the script and the next run builds a new one; run it again unchanged and it
# prints the cached path at once.
#
# Layout, chosen so that nothing needs a loop device or a mount (it runs in containers and CI):
#   MBR (syslinux mbr.bin) | p1 FAT16 64 MiB, boot flag: syslinux, vmlinuz, initrd.img
#                          | p2 ext4 root, made with `mkfs.ext4 -d` from the mmdebstrap tree
# p2 is last, so cloud-init's growpart grows it to the overlay's size on first boot.
# What a clone must not share is left out: /etc/machine-id is empty (mkvm's seed writes a fresh
# one), there are no SSH host keys (cloud-init makes them on first boot), and cloud-init only looks
# at the NoCloud seed (no metadata-service probing, which costs minutes under TCG).
# Needs (as root): mmdebstrap, e2fsprogs, dosfstools, mtools, syslinux, syslinux-common, fdisk,
# qemu-utils (scripts/deps.sh installs them).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/image.sh [--debian 13|12]

Builds (or finds in its cache) the Debian base image mkvm boots and prints its path.
  --debian 13   Debian 13 (trixie), the default
  --debian 12   Debian 12 (bookworm)
Environment: HARDWAY_IMAGE_DEBIAN (13|12), HARDWAY_IMAGE_MIRROR, HARDWAY_IMAGE_SECURITY_MIRROR,
HARDWAY_IMAGE_DIR, HARDWAY_IMAGE_EXTRA (see the script's header).
EOF
}

debian=${HARDWAY_IMAGE_DEBIAN:-13}
while [ $# -gt 0 ]; do
  case "$1" in
    --debian) [ $# -ge 2 ] || { usage >&2; exit 2; }; debian=$2; shift 2 ;;
    --debian=*) debian=${1#--debian=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "image.sh: error: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$debian" in
  13|trixie) debian=13 suite=trixie ;;
  12|bookworm) debian=12 suite=bookworm ;;
  *) echo "image.sh: error: --debian $debian: give 13 (trixie) or 12 (bookworm)" >&2; exit 2 ;;
esac
mirror=${HARDWAY_IMAGE_MIRROR:-http://deb.debian.org/debian}
security_mirror=${HARDWAY_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
out_dir=${HARDWAY_IMAGE_DIR:-/var/cache/hardway/images}
extra=${HARDWAY_IMAGE_EXTRA:-}

log() { echo "image.sh: $*" >&2; }
die() { echo "image.sh: error: $*" >&2; exit "${2:-3}"; }

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap and mkfs.ext4 -d must keep file owners)" 2
for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy syslinux sfdisk qemu-img; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/deps.sh" 2
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$mbr" ] || die "$mbr is missing: apt-get install syslinux-common" 2

hash=$( { cat "$0"; echo "$suite $mirror $security_mirror $extra"; } | sha256sum | cut -c1-16)
image=$out_dir/debian-$debian-$hash.qcow2
if [ -s "$image" ]; then
  log "cached: $image"
  echo "$image"
  exit 0
fi

mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

# Every one of these exists in both suites (checked with `apt-cache policy` against trixie on
# deb.debian.org, 2026-12-01: etcd-server/etcd-client 3.5.16, containerd 1.7.24, runc 1.1.15,
# haproxy 3.0.11, keepalived 2.3.3). mmdebstrap fails naming any package a suite lacks.
base=(linux-image-amd64 systemd-sysv udev cloud-init cloud-guest-utils openssh-server iproute2
  ifupdown netbase procps ca-certificates)
roles=(etcd-server etcd-client containerd runc containernetworking-plugins iptables conntrack socat
  nftables haproxy keepalived)
# Debian's units for the role packages: disabled, so none starts on the first boot with Debian's
# defaults (etcd on localhost with its own data dir, haproxy with no frontend, which node-push's
# `enable --now` would then leave running): each starts with the files mkunits wrote.
disabled="etcd.service containerd.service haproxy.service keepalived.service nftables.service"
packages=$(IFS=,; echo "${base[*]},${roles[*]}")
[ -z "$extra" ] || packages="$packages,${extra// /,}"

log "mmdebstrap $suite ($packages)"
# The essential hook runs before the kernel is installed, so its initramfs is built small: only the
# virtio and ext4 modules a mkvm domain boots from (faster to load under TCG than MODULES=most),
# and the IDE CD-ROM's (ata_piix, sr_mod) that the NoCloud seed is on, so /dev/sr0 exists before
# cloud-init looks for it. Loaded from the root file system instead, sr0 came up under TCG
# seconds after cloud-init's local stage had searched for the seed: cloud-init fell back to
# DataSourceNone, root's key was never installed, and every SSH login was refused.
# The drop-in makes the local stage wait (up to 2 minutes) for that CD-ROM all the same (mkvm's
# domains carry the seed on hdc, the first CD-ROM): cloud-init's main process runs each stage only
# when that stage's unit starts, so this orders the search after udev has the device, whatever
# the kernel's timing. The "-" keeps a boot without a seed going once the wait gives up.
seed_wait='[Service]\nExecStartPre=-/usr/bin/udevadm wait --timeout=120 /dev/sr0\n'
mmdebstrap --variant=minbase --include="$packages" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"; echo MODULES=list > "$1/etc/initramfs-tools/conf.d/hardway"; printf "%s\n" virtio_pci virtio_blk virtio_scsi virtio_net ext4 ata_piix sr_mod > "$1/etc/initramfs-tools/modules"' \
  --customize-hook="mkdir -p \"\$1/etc/systemd/system/cloud-init-local.service.d\"; printf '$seed_wait' > \"\$1/etc/systemd/system/cloud-init-local.service.d/hardway-seed.conf\"" \
  --customize-hook='echo "/dev/vda2 / ext4 errors=remount-ro 0 1" > "$1/etc/fstab"' \
  --customize-hook='printf "datasource_list: [ NoCloud, None ]\n" > "$1/etc/cloud/cloud.cfg.d/90-hardway-nocloud.cfg"' \
  --customize-hook=': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id" "$1"/etc/ssh/ssh_host_*' \
  --customize-hook="systemctl --root=\"\$1\" disable --quiet $disabled" \
  --customize-hook='printf "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n" > "$1/etc/network/interfaces"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  "$suite" "$work/root" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security_mirror $suite-security main" >&2

kernel=$(ls "$work"/root/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$work"/root/boot/initrd.img-* | sort -V | tail -1)
[ -f "$kernel" ] && [ -f "$initrd" ] || die "no kernel or initrd in the tree"

# The boot partition: syslinux on FAT, written with mtools (no mount).
boot_mib=64
cat > "$work/syslinux.cfg" <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=/dev/vda2 ro console=ttyS0,115200 net.ifnames=0
EOF
truncate -s "${boot_mib}M" "$work/boot.img"
mkfs.vfat -n HWBOOT "$work/boot.img" >/dev/null
syslinux --install "$work/boot.img"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$work/boot.img" "$kernel" ::/vmlinuz
mcopy -i "$work/boot.img" "$initrd" ::/initrd.img
mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::/syslinux.cfg

# The root partition: the tree's size plus room for first-boot writes; growpart does the rest.
used_mib=$(du -sm "$work/root" | cut -f1)
root_mib=$(( used_mib + used_mib / 4 + 256 ))
mkfs.ext4 -q -L root -d "$work/root" "$work/root.img" "${root_mib}M" >&2

disk_mib=$(( 1 + boot_mib + root_mib ))
truncate -s "${disk_mib}M" "$work/disk.raw"
sfdisk -q "$work/disk.raw" <<EOF
label: dos
start=1MiB, size=${boot_mib}MiB, type=6, bootable
start=$(( 1 + boot_mib ))MiB, type=83
EOF
dd if="$mbr" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/boot.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$work/disk.raw" bs=1M seek=$(( 1 + boot_mib )) conv=notrunc,sparse status=none

qemu-img convert -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
chmod 0644 "$work/disk.qcow2"
mv "$work/disk.qcow2" "$image"
log "built $image ($(du -h "$image" | cut -f1), tree ${used_mib} MiB) in $(( $(date +%s) - started )) s"
echo "$image"
