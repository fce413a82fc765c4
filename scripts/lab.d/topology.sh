# shellcheck shell=bash
# Namespace topology of the lab; sourced by scripts/lab.  Addresses come from plan.env:
#
#   phone  10.99.1.2 ---- 10.99.1.1  gateway  10.99.3.1 ---- 10.99.3.2  servers
#   lan    10.99.2.2 ---- 10.99.2.1  (and fd99:N::/64 likewise)
#
# The lab's addresses exist only inside these namespaces; none of them has a route to the
# root namespace or beyond.

P=${LAB_PREFIX:-gwlab}
if [ ${#P} -gt 8 ] || ! [[ $P =~ ^[a-z][a-z0-9]*$ ]]; then
  echo "lab: LAB_PREFIX must be 1-8 lowercase letters/digits starting with a letter" >&2
  exit 2
fi
LAB_DIR=${LAB_DIR:-/tmp/$P-lab}
LAB_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The address plan (shared with the Vagrant lab and the e2e tests).
LAB_PLAN=${LAB_PLAN:-$LAB_LIB/plan.env}
# shellcheck source=scripts/lab.d/plan.env
. "$LAB_PLAN"
NODES="phone phone2 lan-client gateway servers"

lab_ns() {
  case "$1" in
    phone|phone2|lan-client|gateway|servers) echo "$P-$1" ;;
    *) return 1 ;;
  esac
}

lab_need() {
  local missing=() pair
  for pair in ip:iproute2 nginx:nginx wireguard-go:wireguard-go wg:wireguard-tools \
              openssl:openssl iperf3:iperf3 curl:curl ping:iputils-ping; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "lab: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# veth pair created directly inside two namespaces: it never exists in the root namespace.
lab_link() {
  local ns_a=$1 if_a=$2 addr_a=$3 addr6_a=$4 ns_b=$5 if_b=$6 addr_b=$7 addr6_b=$8
  ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
  ip -n "$ns_a" addr add "$addr_a" dev "$if_a"
  ip -n "$ns_b" addr add "$addr_b" dev "$if_b"
  ip -n "$ns_a" addr add "$addr6_a" dev "$if_a" nodad
  ip -n "$ns_b" addr add "$addr6_b" dev "$if_b" nodad
  ip -n "$ns_a" link set "$if_a" up
  ip -n "$ns_b" link set "$if_b" up
}

lab_up() {
  [ "$(id -u)" = 0 ] || { echo "lab: needs root (network namespaces)" >&2; exit 1; }
  lab_need
  lab_down quiet
  mkdir -p "$LAB_DIR"
  local n ns
  for n in $NODES; do
    ns=$(lab_ns "$n")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
  done
  local gw phone phone2 lan srv
  gw=$(lab_ns gateway); phone=$(lab_ns phone); phone2=$(lab_ns phone2)
  lan=$(lab_ns lan-client); srv=$(lab_ns servers)
  local m4=/$PREFIX4 m6=/$PREFIX6
  lab_link "$phone" to-gw "$PHONE_V4$m4" "$PHONE_V6$m6" "$gw" to-phone "$GW_PHONE_V4$m4" "$GW_PHONE_V6$m6"
  lab_link "$phone2" to-gw "$PHONE2_V4$m4" "$PHONE2_V6$m6" "$gw" to-phone2 "$GW_PHONE2_V4$m4" "$GW_PHONE2_V6$m6"
  lab_link "$lan" to-gw "$LAN_V4$m4" "$LAN_V6$m6" "$gw" to-lan "$GW_LAN_V4$m4" "$GW_LAN_V6$m6"
  lab_link "$gw" to-srv "$GW_SRV_V4$m4" "$GW_SRV_V6$m6" "$srv" to-gw "$SRV_V4$m4" "$SRV_V6$m6"
  # LAN client and servers route everything to the gateway; the gateway forwards only
  # between lab links (it has no other link).
  ip -n "$lan" route add default via "$GW_LAN_V4"
  ip -n "$lan" -6 route add default via "$GW_LAN_V6"
  ip -n "$srv" route add default via "$GW_SRV_V4"
  ip -n "$srv" -6 route add default via "$GW_SRV_V6"
  ip netns exec "$gw" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  for n in $NODES; do
    ns=$(lab_ns "$n")
    echo "nameserver $SRV_V4" > "/etc/netns/$ns/resolv.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' > "/etc/netns/$ns/hosts"
  done
  LAB_DIR=$LAB_DIR LAB_PLAN=$LAB_PLAN bash "$LAB_LIB/provision-servers.sh" "$srv"
  echo "lab: up (prefix $P, state in $LAB_DIR)"
}

lab_phone_up() {
  local conf=$1 node=${2:-phone} ns iface strip addr dns mtu
  ns=$(lab_ns "$node") || { echo "lab: unknown node '$node'" >&2; exit 2; }
  iface="wg$P${node#phone}"
  mkdir -p "$LAB_DIR"
  strip="$LAB_DIR/$iface.conf"
  # wg setconf rejects the wg-quick keys; apply them ourselves (LAB-NOTES.md).
  grep -viE '^\s*(Address|DNS|MTU|PreUp|PostUp|PreDown|PostDown|Table|SaveConfig)\s*=' "$conf" > "$strip"
  addr=$(sed -n 's/^\s*Address\s*=\s*//Ip' "$conf" | tr ',' ' ')
  dns=$(sed -n 's/^\s*DNS\s*=\s*//Ip' "$conf" | tr ',' ' ')
  mtu=$(sed -n 's/^\s*MTU\s*=\s*//Ip' "$conf" | head -n1)
  ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$iface" \
    >"$LAB_DIR/$iface.log" 2>&1 &
  echo $! > "$LAB_DIR/$iface.pid"
  for _ in $(seq 1 50); do
    ip -n "$ns" link show "$iface" >/dev/null 2>&1 && break
    sleep 0.1
  done
  ip netns exec "$ns" wg setconf "$iface" "$strip"
  local a
  for a in $addr; do ip -n "$ns" addr add "$a" dev "$iface"; done
  ip -n "$ns" link set "$iface" mtu "${mtu:-1420}" up
  # Everything through the tunnel; the endpoint stays reachable over the directly
  # connected underlay link, whose route is more specific.
  ip -n "$ns" route add default dev "$iface"
  ip -n "$ns" -6 route add default dev "$iface"
  if [ -n "$dns" ]; then
    : > "/etc/netns/$ns/resolv.conf"
    for a in $dns; do echo "nameserver $a" >> "/etc/netns/$ns/resolv.conf"; done
  fi
  echo "lab: $node tunnel $iface up"
}

lab_phone_down() {
  local node=$1 iface pidf
  iface="wg$P${node#phone}"
  pidf="$LAB_DIR/$iface.pid"
  if [ -f "$pidf" ]; then
    kill "$(cat "$pidf")" 2>/dev/null || true
    rm -f "$pidf"
  fi
  rm -f "/var/run/wireguard/$iface.sock"
}

lab_down() {
  local quiet=${1:-} pidf n ns
  if [ -d "$LAB_DIR" ]; then
    for pidf in "$LAB_DIR"/*.pid; do
      [ -f "$pidf" ] || continue
      kill "$(cat "$pidf")" 2>/dev/null || true
    done
  fi
  for n in $NODES; do
    ns=$(lab_ns "$n")
    if ip netns list | grep -qw "$ns"; then
      # Anything still running inside dies with the namespace's last reference.
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns del "$ns"
    fi
    rm -rf "/etc/netns/$ns"
  done
  rm -f /var/run/wireguard/wg"$P"*.sock
  rm -rf "$LAB_DIR"
  [ "$quiet" = quiet ] || echo "lab: down (prefix $P)"
}

lab_status() {
  local n ns
  for n in $NODES; do
    ns=$(lab_ns "$n")
    if ip netns list | grep -qw "$ns"; then
      echo "== $n ($ns)"
      ip -n "$ns" -br addr | sed 's/^/   /'
      echo "   processes: $(ip netns pids "$ns" | wc -l)"
    else
      echo "== $n: absent"
    fi
  done
}
