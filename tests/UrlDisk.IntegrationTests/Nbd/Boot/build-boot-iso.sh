#!/bin/bash
# Builds a tiny BIOS-bootable ISO: GRUB (grub-mkrescue) loading Debian's cloud kernel and a busybox initramfs
# whose /init prints a marker on ttyS0 and powers off. Prints the ISO's path on stdout.
# The result is cached under $CACHE_ROOT keyed by the inputs (kernel package version, busybox, this script),
# so reruns take no time.
# Needs: grub-pc-bin grub-common xorriso mtools busybox-static cpio (and apt-get for the kernel .deb).
set -euo pipefail

MARKER=${1:?usage: build-boot-iso.sh MARKER}
CACHE_ROOT=${URLDISK_BOOT_CACHE:-/tmp/urldisk-boot-iso}

for tool in flock grub-mkrescue xorriso mformat busybox cpio gzip dpkg-deb apt-get apt-cache sha256sum; do
    command -v "$tool" >/dev/null || { echo "build-boot-iso: missing tool '$tool' (install grub-pc-bin grub-common xorriso mtools busybox-static cpio)" >&2; exit 2; }
done
[ -d /usr/lib/grub/i386-pc ] || { echo "build-boot-iso: /usr/lib/grub/i386-pc missing (install grub-pc-bin)" >&2; exit 2; }

# The metapackage names the current kernel package. Package lists may be missing or stale on a fresh
# machine: refresh them once (as root) and ask again.
resolve_kernel() {
    KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    KVER=""
    if [ -n "$KPKG" ]; then
        KVER=$(apt-cache policy "$KPKG" | awk '/Candidate:/{print $2}')
    fi
}
refresh_lists() {
    [ "$(id -u)" = 0 ] || { echo "build-boot-iso: package lists need 'apt-get update' (as root)" >&2; exit 2; }
    apt-get update -qq >&2
}
resolve_kernel
if [ -z "$KPKG" ] || [ -z "$KVER" ] || [ "$KVER" = "(none)" ]; then
    refresh_lists
    resolve_kernel
fi
[ -n "$KPKG" ] || { echo "build-boot-iso: apt knows no linux-image-cloud-amd64" >&2; exit 2; }
KEY=$(printf '%s\n' "$MARKER" "$KPKG" "$KVER" "$(sha256sum "$(command -v busybox)")" "$(sha256sum "$0")" | sha256sum | cut -c1-16)
OUT="$CACHE_ROOT/$KEY"
if [ -s "$OUT/boot.iso" ]; then
    echo "$OUT/boot.iso"
    exit 0
fi

# One build at a time (tests may ask in parallel); whoever waited finds the ISO ready.
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9
if [ -s "$OUT/boot.iso" ]; then
    echo "$OUT/boot.iso"
    exit 0
fi

WORK=$(mktemp -d "${CACHE_ROOT%/*}/urldisk-boot-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# apt-get download writes into the current directory; _apt cannot write to a private temp dir, so allow it.
chmod 0777 "$WORK"
if ! apt-get download -q "$KPKG" >&2; then
    # The lists named a version the archive no longer has.
    refresh_lists
    resolve_kernel
    apt-get download -q "$KPKG" >&2
fi
dpkg-deb -x ./*.deb kernel
VMLINUZ=$(ls kernel/boot/vmlinuz-*)

mkdir -p initramfs/bin initramfs/dev initramfs/proc initramfs/sys
cp "$(command -v busybox)" initramfs/bin/busybox
cat > initramfs/init <<INIT
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
echo "$MARKER" > /dev/ttyS0
echo "$MARKER" > /dev/console
/bin/busybox poweroff -f
INIT
chmod +x initramfs/init
(cd initramfs && find . | cpio -o -H newc --quiet | gzip -9) > initrd.gz

mkdir -p iso/boot/grub
cp "$VMLINUZ" iso/boot/vmlinuz
cp initrd.gz iso/boot/initrd.gz
cat > iso/boot/grub/grub.cfg <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry "urldisk boot test" {
    linux /boot/vmlinuz console=ttyS0 panic=-1 quiet
    initrd /boot/initrd.gz
}
CFG
grub-mkrescue -o boot.iso iso >&2 2>grub-mkrescue.log || { cat grub-mkrescue.log >&2; exit 1; }

mkdir -p "$OUT"
mv boot.iso "$OUT/boot.iso.$$"
mv "$OUT/boot.iso.$$" "$OUT/boot.iso"
echo "$OUT/boot.iso"
