# Shared by the bench scripts (source it after setting here, tmp and pids=()).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# require_tools TOOL…: exits naming the first tool that is missing.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/test.sh once to install the packages" >&2; exit 1; }
  done
}

# write_striped_image PATH MIB: random data with every fourth 8 MiB region left a hole.
write_striped_image() {
  python3 - "$1" "$2" <<'PY'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
region = 8 << 20
with open(path, "wb") as f:
    f.truncate(mib << 20)
    for i, off in enumerate(range(0, mib << 20, region)):
        if i % 4 != 1:
            f.seek(off)
            f.write(os.urandom(min(region, (mib << 20) - off)))
PY
}

# start_nginx_and_proxy PROBE_FILE ACCESS_LOG: nginx serving $tmp/html on a free port ($port) and
# bench/delay-proxy.py adding 10 ms each way in front of it ($proxy_port); returns once both answer.
# ACCESS_LOG "on" writes "$tmp/access.log" as "method status body_bytes_sent" lines; "off" logs nothing.
start_nginx_and_proxy() {
  local probe=$1 log_line="access_log off;"
  [[ $2 == on ]] && log_line="log_format bench '\$request_method \$status \$body_bytes_sent'; access_log $tmp/access.log bench;"
  mkdir -p "$tmp/tmp"
  port=$(free_port)
  local user_line=""
  [[ $(id -u) == 0 ]] && user_line="user root root;"
  cat > "$tmp/nginx.conf" <<CONF
$user_line
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
events { worker_connections 1024; }
http {
    $log_line
    client_body_temp_path $tmp/tmp/body; proxy_temp_path $tmp/tmp/proxy; fastcgi_temp_path $tmp/tmp/fastcgi;
    uwsgi_temp_path $tmp/tmp/uwsgi; scgi_temp_path $tmp/tmp/scgi;
    default_type application/octet-stream;
    sendfile on; tcp_nopush on; keepalive_requests 100000;
    server { listen 127.0.0.1:$port; root $tmp/html; }
}
CONF
  nginx -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" -g 'daemon off;' & pids+=($!)
  proxy_port=$(free_port)
  python3 "$here/delay-proxy.py" "$proxy_port" "$port" 10 > "$tmp/proxy.out" & pids+=($!)
  local _
  for _ in $(seq 100); do
    curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/$probe" && grep -q ready "$tmp/proxy.out" && break
    sleep 0.1
  done
}
