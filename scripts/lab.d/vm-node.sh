#!/usr/bin/env bash
# Provisions one machine of the lab as a whole host (a Vagrant VM) instead of a namespace:
# the same packages (lab_need from topology.sh), the same address plan (plan.env) and the
# same servers (provision-servers.sh without a namespace) as `scripts/lab up`.
#
#   vm-node.sh gateway|lan-client|phone-sim|servers
#
#   phone-sim 10.99.1.2 ---- 10.99.1.1  gateway  10.99.3.1 ---- 10.99.3.2  servers
#   lan-client 10.99.2.2 --- 10.99.2.1  (and fd99:N::/64 likewise)
#
# The IPv4 addresses are given to the VMs by the Vagrantfile (private networks, read from
# plan.env too); this script adds the IPv6 twins, routes, forwarding and resolver settings
# of each role.  It runs at every `vagrant up`, `reload` and `provision`.
set -euo pipefail
role=${1:?usage: vm-node.sh gateway|lan-client|phone-sim|servers}
lib=$(cd "$(dirname "$0")" && pwd)
# A VM's lab state survives reboots of /tmp; topology.sh keeps a LAB_DIR that is set.
export LAB_DIR=${LAB_DIR:-/var/lib/gwlab}
# shellcheck source=scripts/lab.d/topology.sh
. "$lib/topology.sh"
[ "$(id -u)" = 0 ] || { echo "vm-node: needs root" >&2; exit 1; }

lab_need
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  python3 python3-dnspython python3-websockets >/dev/null
# Debian's nginx package starts its own server on port 80 at install time.  The lab needs
# none on the gateway, phone-sim and lan-client, and its own on the servers VM.
systemctl disable --now nginx >/dev/null 2>&1 || true

# The interface that carries a given lab IPv4 address (Vagrant names them eth1, enp0s8, ...).
iface_of() {
  ip -o -4 addr show | awk -v a="$1" '{split($4, p, "/"); if (p[1] == a) print $2}' | head -n1
}

add_v6() {
  local v4=$1 v6=$2 dev
  dev=$(iface_of "$v4")
  [ -n "$dev" ] || { echo "vm-node: no interface has $v4 (check the Vagrantfile)" >&2; exit 1; }
  ip -6 addr replace "$v6/$PREFIX6" dev "$dev" nodad
  echo "$dev"
}

case "$role" in
  gateway)
    add_v6 "$GW_PHONE_V4" "$GW_PHONE_V6" >/dev/null
    add_v6 "$GW_LAN_V4" "$GW_LAN_V6" >/dev/null
    add_v6 "$GW_SRV_V4" "$GW_SRV_V6" >/dev/null
    sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    echo "vm-node: gateway ready; LAN interface: $(iface_of "$GW_LAN_V4")"
    ;;
  lan-client)
    add_v6 "$LAN_V4" "$LAN_V6" >/dev/null
    # Everything through the gateway, as a LAN host whose router is the gateway.
    ip route replace default via "$GW_LAN_V4"
    ip -6 route replace default via "$GW_LAN_V6"
    echo "nameserver $SRV_V4" > /etc/resolv.conf
    ;;
  phone-sim)
    add_v6 "$PHONE_V4" "$PHONE_V6" >/dev/null
    ip route replace "$LAB_NET4" via "$GW_PHONE_V4"
    ip -6 route replace "$LAB_NET6" via "$GW_PHONE_V6"
    ;;
  servers)
    add_v6 "$SRV_V4" "$SRV_V6" >/dev/null
    # Only the lab's networks go back through the gateway; Vagrant's own NAT link stays.
    ip route replace "$LAB_NET4" via "$GW_SRV_V4"
    ip -6 route replace "$LAB_NET6" via "$GW_SRV_V6"
    # Stop what an earlier provisioning of this VM started: the servers need their ports.
    old=()
    for pidf in "$LAB_DIR"/*.pid; do
      if [ -f "$pidf" ]; then old+=("$(cat "$pidf")"); kill "${old[-1]}" 2>/dev/null || true; fi
    done
    for _ in $(seq 1 50); do  # until they have let go of their ports (bounded: 5 s)
      alive=0
      for pid in "${old[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    bash "$lib/provision-servers.sh"
    ;;
  *)
    echo "vm-node: unknown role '$role'" >&2; exit 2 ;;
esac
echo "vm-node: $role provisioned"
