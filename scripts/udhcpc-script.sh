#!/bin/sh
# Event script of busybox udhcpc for tapbridge's `addresses: dhcp` ports: tapbridge runs
#   udhcpc -f -i IFNAME -s udhcpc-script.sh  inside the port's namespace,
# and this applies the lease to the interface: address and prefix, MTU, default route.
# $1 is the event; the lease is in the environment (ip, mask, router, mtu, ...). It does not
# touch /etc/resolv.conf (shared with the host unless /etc/netns/NS exists).
IP=$(command -v ip || echo /usr/sbin/ip)
dev="$interface"
case "$1" in
  deconfig)
    $IP -4 addr flush dev "$dev"
    $IP link set dev "$dev" up
    ;;
  bound|renew)
    [ -n "$mtu" ] && $IP link set dev "$dev" mtu "$mtu"
    old=$($IP -4 -o addr show dev "$dev" | awk '{print $4}')
    if [ "$old" != "$ip/$mask" ]; then
      $IP -4 addr flush dev "$dev"
      $IP -4 addr add "$ip/$mask" ${broadcast:+broadcast "$broadcast"} dev "$dev"
    fi
    if [ -n "$router" ]; then
      set -- $router
      $IP -4 route replace default via "$1" dev "$dev"
    fi
    ;;
  leasefail|nak)
    ;;
esac
exit 0
