#!/usr/bin/env bash
# Starts the lab's servers: nginx (plain HTTP on 80; HTTPS with HTTP/1.1 and HTTP/2 on 443,
# self-signed for *.lab.test), a WebSocket echo (8765), a UDP echo (9999), a DNS server for
# the zone lab.test (53), a TCP bulk server (5001) and iperf3 (5201).
#
#   provision-servers.sh [NAMESPACE]
#
# With a namespace (the namespace lab) everything runs inside it; without one (a Vagrant
# VM) it runs on the host itself.  State, pid files and logs go to $LAB_DIR.
set -euo pipefail
ns=${1:-}
LAB_DIR=${LAB_DIR:-/tmp/gwlab-lab}
lib=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lab.d/plan.env
. "${LAB_PLAN:-$lib/plan.env}"
mkdir -p "$LAB_DIR/www" "$LAB_DIR/tls"

run() { if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

# A CA of the lab's own and a server certificate for the test names and addresses.
tls=$LAB_DIR/tls
if [ ! -f "$tls/server.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=gateway lab CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=www.lab.test" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:lab.test,DNS:*.lab.test,IP:%s,IP:%s\n' "$SRV_V4" "$SRV_V6" > "$tls/san.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 30 -extfile "$tls/san.ext" -out "$tls/server.pem" 2>/dev/null
fi

www=$LAB_DIR/www
echo "hello from the gateway lab" > "$www/index.html"
[ -f "$www/1m.bin" ] || head -c 1048576 /dev/urandom > "$www/1m.bin"
for size in ${LAB_BIG_FILES:-}; do
  [ -f "$www/${size}m.bin" ] || head -c $((size * 1048576)) /dev/urandom > "$www/${size}m.bin"
done

cat > "$LAB_DIR/nginx.conf" <<NGINX
worker_processes 1;
pid $LAB_DIR/nginx.pid;
error_log $LAB_DIR/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path $LAB_DIR/nginx-body;
  proxy_temp_path $LAB_DIR/nginx-proxy;
  fastcgi_temp_path $LAB_DIR/nginx-fastcgi;
  uwsgi_temp_path $LAB_DIR/nginx-uwsgi;
  scgi_temp_path $LAB_DIR/nginx-scgi;
  types { text/html html; application/octet-stream bin; }
  server {
    listen 80; listen [::]:80;
    listen 443 ssl http2; listen [::]:443 ssl http2;
    server_name _;
    ssl_certificate $tls/server.pem;
    ssl_certificate_key $tls/server.key;
    root $www;
    location /echo-headers { return 200 "\$http_x_lab\n"; }
  }
}
NGINX
run nginx -c "$LAB_DIR/nginx.conf"

python_bin=${LAB_PYTHON:-python3}
# setsid: on a VM the provisioner's SSH session ends after this script, and the servers
# must not go with it.  (In a background job setsid execs in place, so $! is the server.)
run setsid "$python_bin" "$lib/servers.py" --v4 "$SRV_V4" --v6 "$SRV_V6" \
  >"$LAB_DIR/servers.log" 2>&1 &
echo $! > "$LAB_DIR/servers.pid"
if command -v iperf3 >/dev/null 2>&1; then
  run iperf3 -s -D -I "$LAB_DIR/iperf3.pid" --logfile "$LAB_DIR/iperf3.log"
fi
# Wait until the Python servers answer (bounded).
for _ in $(seq 1 50); do
  grep -q ready "$LAB_DIR/servers.log" 2>/dev/null && break
  sleep 0.1
done
grep -q ready "$LAB_DIR/servers.log" || { echo "lab: servers did not start:" >&2; cat "$LAB_DIR/servers.log" >&2; exit 1; }
