#!/usr/bin/env python3
"""A device's control command, as a user would write one (control = "command" in an inventory): reads the harness's
request as JSON on stdin and configures a Linux vxlan device inside the network namespace named by its argument,
with iproute2. Its interface to the link is "dut". Used by tests/test_devices_docker.py."""
import json
import os
import subprocess
import sys
import time



def ping(argv):
    """iputils ping's options the harness uses (-c -i -W -I -s -M) and its summary line, on a raw socket: this
    host has no ping binary, and a device answers for its own tools."""
    import socket
    import struct
    opts, target, i = {}, None, 0
    while i < len(argv):
        if argv[i] in ("-c", "-i", "-W", "-I", "-s", "-M"):
            opts[argv[i]], i = argv[i + 1], i + 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            target, i = argv[i], i + 1
    count, size = int(opts.get("-c", 3)), int(opts.get("-s", 56))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if "-I" in opts:
        sock.bind((opts["-I"], 0))
    if opts.get("-M") == "do":
        sock.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
    ident, received = os.getpid() & 0xFFFF, 0

    def checksum(data):
        data += b"\0" * (len(data) % 2)
        total = sum(struct.unpack(f"!{len(data) // 2}H", data))
        total = (total >> 16) + (total & 0xFFFF)
        return ~(total + (total >> 16)) & 0xFFFF
    for seq in range(1, count + 1):
        body = struct.pack("!HH", ident, seq) + b"\x4f" * size
        packet = struct.pack("!BBH", 8, 0, checksum(b"\x08\0\0\0" + body)) + body
        try:
            sock.sendto(packet, (target, 0))
        except OSError as exc:
            print(f"ping: sendmsg: {exc.strerror}")
            continue
        deadline = time.monotonic() + float(opts.get("-W", 1))
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                break
            icmp = data[(data[0] & 0x0F) * 4:]
            if icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                received += 1
                break
        time.sleep(float(opts.get("-i", 0.05)))
    print(f"{count} packets transmitted, {received} received")
    return 0 if received == count else 1


if sys.argv[1] == "--ping":  # run inside the namespace (see exec below)
    sys.exit(ping(sys.argv[2:]))
ns = sys.argv[1]
request = json.load(sys.stdin)


def ip(*argv, check=True):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=check, capture_output=True, text=True)


def clear():
    out = ip("ip", "-o", "link", "show", "type", "vxlan").stdout
    for line in out.splitlines():
        ip("ip", "link", "del", line.split(":")[1].strip().split("@")[0])


action = request["action"]
if action == "exec":
    argv = request["argv"]
    if argv[0] == "ping":
        argv = [sys.executable, __file__, "--ping", *argv[1:]]
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
    sys.stdout.write(done.stdout + done.stderr)
    sys.exit(done.returncode)
if action == "reset":
    clear()
    sys.exit(0)
hold = os.environ.get("OI_TEST_DEVICE_HOLD")
while hold and os.path.exists(hold):  # the test kills the run meanwhile
    time.sleep(0.2)
settings = request["settings"]
if settings["encapsulation"] != "vxlan":
    print(f"this device does {settings['encapsulation']!r} not", file=sys.stderr)
    sys.exit(2)
clear()
for segment in settings["segments"]:
    dev = f"vx{segment['vni']}"
    port = ["dstport", str(settings["udp_port"])] if settings["udp_port"] else []
    ip("ip", "link", "add", dev, "type", "vxlan", "id", str(segment["vni"]), "local", settings["local_address"],
       "dev", "dut", "noudpcsum", *port)
    ip("ip", "link", "set", dev, "address", segment["inner_mac"])
    ip("ip", "address", "add", segment["inner_address"], "dev", dev)
    for remote in settings["remote_addresses"]:
        ip("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", remote)
    try:  # complete inner checksums before they leave (OVS's userspace datapath drops partial ones); optional
        ip("ethtool", "-K", dev, "tx", "off", check=False)
    except FileNotFoundError:
        pass
    ip("ip", "link", "set", dev, "up")
print(f"configured {', '.join('vx%d' % s['vni'] for s in settings['segments'])}")
