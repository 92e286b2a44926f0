#!/usr/bin/env bash
# Download times of one image over FTP, FTPS (explicit TLS) and TFTP: urldisk vs curl and tftp-hpa.
# Servers: vsftpd and tftpd-hpa on 127.0.0.1 random ports, in a temp dir removed at exit.
# Usage: bench/ftp-tftp.sh [SIZE_MIB]   (default 256). Needs: vsftpd tftpd-hpa tftp-hpa curl openssl.
# urldisk side: ./urldisk convert -f raw -O raw (8 reads in flight; times include the .NET start, about 0.1-0.3 s).
set -euo pipefail
size_mib=${1:-256}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tmp=$(mktemp -d /tmp/urldisk-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }

mkdir -p "$tmp/anon" "$tmp/empty"
chmod 755 "$tmp" "$tmp/anon"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$tmp/anon/disk.img"
chmod 644 "$tmp/anon/disk.img"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
ftp_port=$(free_port SOCK_STREAM)
tftp_port=$(free_port SOCK_DGRAM)
cat > "$tmp/vsftpd.conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$ftp_port
background=NO
seccomp_sandbox=NO
secure_chroot_dir=$tmp/empty
anonymous_enable=YES
no_anon_password=YES
anon_root=$tmp/anon
local_enable=NO
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
rsa_cert_file=$tmp/cert.pem
rsa_private_key_file=$tmp/key.pem
CONF
vsftpd "$tmp/vsftpd.conf" & pids+=($!)
in.tftpd -L -a "127.0.0.1:$tftp_port" -s "$tmp/anon" & pids+=($!)
sleep 0.5

"$repo/urldisk" --help >/dev/null # build the launcher's Release CLI before timing
fetch() { "$repo/urldisk" convert -f raw -O raw "$1" "$2"; }

run() { # name command...
  local name=$1; shift
  rm -f "$tmp/out.img"
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  cmp -s "$tmp/out.img" "$tmp/anon/disk.img" || { echo "$name: output differs" >&2; exit 1; }
  awk -v n="$name" -v s="$start" -v e="$end" -v m="$size_mib" 'BEGIN { printf "%-34s %7.2f s %8.1f MiB/s\n", n, e - s, m / (e - s) }'
}

echo "image: $size_mib MiB; vsftpd :$ftp_port, tftpd-hpa :$tftp_port"
url="ftp://127.0.0.1:$ftp_port/disk.img"
turl="tftp://127.0.0.1:$tftp_port/disk.img"
tls_spec="json:{\"file\":{\"driver\":\"ftp\",\"url\":\"$url\",\"tls\":\"explicit\",\"cafile\":\"$tmp/cert.pem\"}}"
run "curl ftp://"                      curl -sS -o "$tmp/out.img" "$url"
run "urldisk ftp:// (4 connections)"   fetch "$url" "$tmp/out.img"
run "curl ftp:// --ssl-reqd"           curl -sS --ssl-reqd --cacert "$tmp/cert.pem" -o "$tmp/out.img" "$url"
run "urldisk ftp:// tls=explicit"      fetch "$tls_spec" "$tmp/out.img"
run "tftp-hpa client (512, lock-step)"         tftp -m binary 127.0.0.1 "$tftp_port" -c get disk.img "$tmp/out.img"
run "curl tftp:// (blksize 1428)"      curl -sS --tftp-blksize 1428 -o "$tmp/out.img" "$turl"
run "urldisk tftp:// (blksize 1428)"   fetch "$turl" "$tmp/out.img"
