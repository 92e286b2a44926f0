#!/usr/bin/env bash
# Regenerates the seed inputs of the fuzz corpus (small images and wire messages). Findings are added by hand, one
# file each, named after what they found; they stay in the corpus as regressions.
# Needs qemu-img and qemu-io (Debian qemu-utils).
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p qcow2-image qcow2-header vmdk vdi spec nbd-handshake nbd-transmission ftp-reply tftp-packet

img() { # name, create options, then qemu-io commands
    local name="$1" opts="$2"
    shift 2
    qemu-img create -q -f qcow2 -o "$opts" "$tmp/$name" 1M
    for cmd in "$@"; do
        qemu-io -f qcow2 -c "$cmd" "$tmp/$name" >/dev/null
    done
    cp "$tmp/$name" "qcow2-image/seed-$name"
    head -c 1024 "$tmp/$name" > "qcow2-header/seed-$name"
}

img v3-empty cluster_size=512
img v3-data cluster_size=512 "write -P 0x5a 0 4k" "write -P 0x11 512k 1536"
img v2-data cluster_size=512,compat=0.10 "write -P 0x5a 0 4k" "write -z 8k 4k"
img v3-zero cluster_size=512 "write -P 1 0 8k" "write -z 0 4k" "discard 4k 2k"
img refcount1 cluster_size=512,refcount_bits=1 "write -P 2 1k 1k"
img refcount64 cluster_size=512,refcount_bits=64 "write -P 3 1k 1k"
img lazy cluster_size=512,lazy_refcounts=on "write -P 4 0 1k"
img extl2 cluster_size=16k,extended_l2=on "write -P 5 1k 2k" "write -z 8k 1k"
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 "$tmp/backing" 1M -u
cp "$tmp/backing" qcow2-image/seed-backing; head -c 1024 "$tmp/backing" > qcow2-header/seed-backing
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/snap" 1M
qemu-io -f qcow2 -c "write -P 6 0 2k" "$tmp/snap" >/dev/null
qemu-img snapshot -c first "$tmp/snap"
qemu-io -f qcow2 -c "write -P 7 1k 2k" "$tmp/snap" >/dev/null
cp "$tmp/snap" qcow2-image/seed-snapshot
head -c 64k /dev/zero | tr '\0' 'x' > "$tmp/raw"
for c in zlib zstd; do
    qemu-img convert -q -c -O qcow2 -o cluster_size=512,compression_type=$c "$tmp/raw" "$tmp/comp-$c"
    cp "$tmp/comp-$c" "qcow2-image/seed-compressed-$c"
done

# vmdk and vdi: small images from qemu-img (vmdk/seed-urldisk-stream, the footer layout urldisk writes, is checked in
# as made by `urldisk convert -O vmdk -o subformat=streamOptimized` from the same raw file).
head -c 256k /dev/zero > "$tmp/small.raw"
qemu-io -f raw -c "write -P 0x5a 0 4k" -c "write -P 0x21 130k 2k" "$tmp/small.raw" >/dev/null
for sub in monolithicSparse streamOptimized; do
    qemu-img convert -q -f raw -O vmdk -o subformat=$sub "$tmp/small.raw" "vmdk/seed-$sub"
done
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse,zeroed_grain=on "$tmp/small.raw" vmdk/seed-zeroed-grain
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$tmp/small.raw" "$tmp/flat.vmdk"
cp "$tmp/flat.vmdk" vmdk/seed-descriptor-flat
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 512 ZERO\nRDONLY 8 ZERO\n\nddb.adapterType = "lsilogic"\n' > vmdk/seed-descriptor-zero
qemu-img convert -q -f raw -O vdi "$tmp/small.raw" vdi/seed-dynamic
qemu-img create -q -f vdi "$tmp/empty.vdi" 3M
cp "$tmp/empty.vdi" vdi/seed-empty

printf '%s' 'https://user:pw@host:8443/images/disk.img?x=1' > spec/seed-url
printf '%s' 'json:{"driver":"qcow2","file":{"driver":"http","url":"http://h/a.qcow2","readahead":"64k","timeout":10}}' > spec/seed-json
printf '%s' '{"file.driver":"https","file.url":"https://h/x","file.sslverify":"off","file.cookie":"a=1; b=2"}' > spec/seed-json-dotted
printf '%s' 'driver=raw,file.driver=http,file.url=http://h/a,,b.img,file.readahead=1.5M,offset=512,size=1G' > spec/seed-keyvalue
printf '%s' '/var/images/disk with spaces.img' > spec/seed-path

# NBD: client hello + OPT_GO (name "", one info request), a compact READ, an extended BLOCK_STATUS, reply headers.
printf '00000001' | xxd -r -p > nbd-handshake/seed-client-flags
printf '49484156454f5054000000070000000a00000000000100030000' | xxd -r -p > nbd-handshake/seed-opt-go
printf '000000046e616d65000000010000000e626173653a616c6c6f636174696f6e' | xxd -r -p > nbd-handshake/seed-meta-context
printf '0000000300000004000000006578706f727400000004' | xxd -r -p > nbd-handshake/seed-server-entry
printf '25609513000000000000000000000007000000000000100000000200' | xxd -r -p > nbd-transmission/seed-read
printf '21e41c7100000007000000000000000700000000000000000000000100000000' | xxd -r -p > nbd-transmission/seed-extended-block-status
printf '668e33ef0001000200000000000000090000000c000000000000100000000200' | xxd -r -p > nbd-transmission/seed-structured-hole
printf '674466980000000100000000 00abcdef' | tr -d ' ' | xxd -r -p > nbd-transmission/seed-simple-reply

printf '220 vsftpd ready\r\n' > ftp-reply/seed-greeting
printf '211-Features:\r\n EPSV\r\n MDTM\r\n REST STREAM\r\n SIZE\r\n AUTH TLS\r\n211 End\r\n' > ftp-reply/seed-feat
printf '229 Entering Extended Passive Mode (|||40123|)\r\n' > ftp-reply/seed-epsv
printf '227 Entering Passive Mode (127,0,0,1,156,201)\r\n' > ftp-reply/seed-pasv
printf '213 20240102030405.123\r\n213 1048576\r\n' > ftp-reply/seed-mdtm-size
printf '150 Opening BINARY mode data connection\r\n226 Transfer complete\r\n' > ftp-reply/seed-retr

printf '0003000168656c6c6f' | xxd -r -p > tftp-packet/seed-data
printf '00040001' | xxd -r -p > tftp-packet/seed-ack
printf '000500014e6f74206865726500' | xxd -r -p > tftp-packet/seed-error
printf '0006626c6b73697a650031343238007473697a650031303438353736007769' | xxd -r -p > tftp-packet/seed-oack-partial
printf '0006626c6b73697a6500313432380074736 97a650031303438353736007769 6e646f7773697a65003800' | tr -d ' ' | xxd -r -p > tftp-packet/seed-oack
printf '00016469736b2e696d67006f6374657400747369 7a65003000' | tr -d ' ' | xxd -r -p > tftp-packet/seed-rrq

# VHD, VHDX (in the harnesses' sparse form: u32 size, then u32 offset / u16 length / bytes records) and xz files.
mkdir -p vpc vhdx xz-index
sparse() { # file -> sparse form on stdout
    python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
out = bytearray(struct.pack('<I', len(data)))
pos = 0
while pos < len(data):
    if data[pos:pos + 512].strip(b'\0'):
        end = pos + 512
        while end < len(data) and end - pos < 65024 and data[end:end + 512].strip(b'\0'):
            end += 512
        out += struct.pack('<IH', pos, min(end, len(data)) - pos) + data[pos:end]
        pos = end
    else:
        pos += 512
sys.stdout.buffer.write(out)
PY
}
qemu-img create -q -f raw "$tmp/small.raw" 3M
qemu-io -f raw -c "write -P 0x5a 0 4k" -c "write -P 0x11 2M 1536" "$tmp/small.raw" >/dev/null
for sub in fixed dynamic; do
    qemu-img convert -q -f raw -O vpc -o subformat=$sub,force_size=on "$tmp/small.raw" "$tmp/v-$sub"
    sparse "$tmp/v-$sub" > vpc/seed-$sub
    qemu-img convert -q -f raw -O vhdx -o subformat=$sub,log_size=1M,block_size=1M "$tmp/small.raw" "$tmp/x-$sub"
    sparse "$tmp/x-$sub" > vhdx/seed-$sub
done
qemu-img convert -q -f raw -O vpc -o subformat=dynamic "$tmp/small.raw" "$tmp/v-chs"
sparse "$tmp/v-chs" > vpc/seed-dynamic-chs
head -c 200k /dev/zero | tr '\0' 'u' > "$tmp/text"
xz -T1 --block-size=64KiB -c "$tmp/text" > xz-index/seed-blocks
xz -T1 -c "$tmp/text" > xz-index/seed-one-block
xz -T1 --check=crc32 --block-size=100KiB -c "$tmp/text" > xz-index/seed-crc32
{ cat xz-index/seed-one-block; printf '\0\0\0\0'; cat xz-index/seed-blocks; } > xz-index/seed-two-streams

# The checkers (vdi-check, vmdk-check, vhdx-check): sound images and one broken the way each check looks for.
mkdir -p vdi-check vmdk-check vhdx-check
cp vdi/seed-dynamic vdi/seed-empty vdi-check/
python3 - vdi-check <<'PY'
import struct, sys
d = bytearray(open(f"{sys.argv[1]}/seed-dynamic", "rb").read())
m = struct.unpack_from("<I", d, 340)[0]
struct.pack_into("<I", d, m + 4, 0)   # block 1 names block 0 again
struct.pack_into("<I", d, m + 8, 9)   # block 2 names a block past the count
open(f"{sys.argv[1]}/seed-broken-map", "wb").write(d)
PY
cp vmdk/seed-monolithicSparse vmdk/seed-streamOptimized vmdk/seed-zeroed-grain vmdk-check/
python3 - vmdk-check <<'PY'
import struct, sys
d = bytearray(open(f"{sys.argv[1]}/seed-monolithicSparse", "rb").read())
gd = struct.unpack_from("<Q", d, 56)[0] * 512
gt = struct.unpack_from("<I", d, gd)[0] * 512
struct.pack_into("<I", d, gt, 999999)  # grain 0 past the end of the file
open(f"{sys.argv[1]}/seed-grain-past-eof", "wb").write(d)
PY
cp vhdx/seed-dynamic vhdx/seed-fixed vhdx-check/
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic,log_size=1M,block_size=1M "$tmp/small.raw" "$tmp/x-broken"
python3 - "$tmp/x-broken" <<'PY'
import struct, sys, uuid
f = open(sys.argv[1], "r+b"); f.seek(192 * 1024); r = f.read(4096)
for i in range(struct.unpack_from("<I", r, 8)[0]):
    if uuid.UUID(bytes_le=r[16 + 32 * i:32 + 32 * i]) == uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08"):
        bat = struct.unpack_from("<Q", r, 32 + 32 * i)[0]
f.seek(bat); f.write(struct.pack("<QQ", (100 << 20) | 6, (1 << 20) | 6))  # past the end; over the log
PY
sparse "$tmp/x-broken" > vhdx-check/seed-broken-bat

# disk-cache-index/seed-entry is the index urldisk wrote for a 5 MB file read whole through --cache-dir (header and
# 20 records); seed-header-cut is its first 100 bytes. Both are checked in as they are (urldisk makes them, not a tool).

# Boot profiles (src/UrlDisk/Layers/Prefetch/BootProfile.cs): empty, a few ranges, and one of another format version.
mkdir -p boot-profile
python3 - boot-profile <<'PY'
import hashlib, struct, sys
def profile(ranges, length=64 << 20, version=1):
    body = b"UDPROFIL" + struct.pack(">HHIQ", version, 0, len(ranges), length) + bytes.fromhex("ab" * 32)
    body += b"".join(struct.pack(">QQ", o, n) for o, n in ranges)
    return body + hashlib.sha256(body).digest()
out = sys.argv[1]
open(f"{out}/seed-empty", "wb").write(profile([]))
open(f"{out}/seed-ranges", "wb").write(profile([(32768, 65536), (0, 2048), (8 << 20, 1 << 20), (8 << 20 | 1 << 20, 4096), ((64 << 20) - 512, 512)]))
open(f"{out}/seed-version-2", "wb").write(profile([(0, 512)], version=2))
PY
