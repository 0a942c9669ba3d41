#!/bin/sh
# Prints one line per capability: "<name> yes|no <detail>". Runs with NET_ADMIN and /dev/net/tun, in a
# fresh network namespace, so nothing it adds touches the host. Reads only the kernel's answers.
try() {  # name, command...
  name=$1; shift
  if out=$("$@" 2>&1); then echo "$name yes"; else echo "$name no $(echo "$out" | head -n1)"; fi
}
try kernel-esp ip xfrm state add src 198.18.255.1 dst 198.18.255.2 proto esp spi 0x100 mode tunnel \
  enc 'cbc(aes)' 0x00112233445566778899aabbccddeeff auth-trunc 'hmac(sha256)' \
  0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 128
try kernel-l2tp ip l2tp show tunnel
if grep -qw ppp /proc/devices; then echo "ppp yes"; else echo "ppp no /proc/devices has no ppp (ppp_generic not loaded)"; fi
try openvswitch genl ctrl get name ovs_datapath
if [ -c /dev/net/tun ]; then echo "tun yes"; else echo "tun no /dev/net/tun missing"; fi
try vxlan ip link add probe-vx type vxlan id 42 dstport 4789 dev lo
try geneve ip link add probe-gnv type geneve id 42 remote 198.18.255.2
