"""The overlay tax: what a tunnel costs against the plain underlay between the same two nodes. Throughput (one
iperf3 TCP run, one way, each way of carrying it: inside the overlay, then on the underlay) and round-trip time
(ICMP echo) are measured here; the per-packet overhead is read from the wire by the case, which knows its
encapsulation. This module knows no protocol: a case names the nodes and the addresses to use.

    figures = tax.measure(client, server, overlay=(inner_src, inner_dst), underlay=server.address)
    assert figures.underlay_carried_overlay, figures.describe()
    figures.record(pair_lab, overhead_bytes=...)

The figures are relative to the host that measured them: both nodes are containers sharing its CPUs with
whatever else runs there, and a user-space data plane pays in CPU what a kernel one does not. They compare
pairs within one run; they are not a benchmark of an implementation.

Why one second, the shortest run iperf3 3.12 takes (-t is whole seconds: 0.5 reads as 0, which runs forever), and
not a fixed number of bytes (-n): a byte-count test ends when the sender has written its last byte, and the
receiver's count stops there; with TCP's send buffer larger than a short transfer, that is before most of it
arrived (2 MiB through a path shaped to 40 Mbit/s: 64 KiB counted, in 0.013 s). A second is long for TCP's slow start on
every path here, so the figure is the path's rate.

Throughput is measured with the capture already stopped (a case calls wire() first): a second of iperf3 would put
up to a GB into a full-packet pcap, and every reader of it would pay. The wire proves the overlay path with a
known-size echo instead, and the client's underlay interface counter shows that the overlay run's bytes left over
the underlay.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from harness.errors import HarnessError, LabTimeout
from harness.lab import Node
from harness.packets import Datagrams
from harness.ping import Ping, ping
from harness.waiting import wait_for

SECONDS = 1  # per iperf3 run (see above)
# Echoes back to back, each answered long before the next goes (the slowest overlay's RTT here is ~8 ms).
PINGS, PING_INTERVAL_S = 10, 0.01
OVERLAY_PORT, UNDERLAY_PORT = 5201, 5202  # one one-off server per run, so a stuck one cannot block the next
SERVER_TIMEOUT_S = 10
CONNECT_TIMEOUT_MS = 1500  # the SYN and its retransmission after the initial 1 s RTO (RFC 6298 2.1)
UNDERLAY_INTERFACE = "eth0"  # a lab node's only network
HEAD = 8  # bytes of payload kept per captured packet: enough for an SPI or a marker
TCP, UDP = 6, 17

RTT = re.compile(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms")


@dataclass(frozen=True)
class Throughput:
    """One iperf3 TCP run, as the receiver counted it; or iperf3's own error (it could not connect, the peer
    went away): an overlay that cannot carry TCP is the case's verdict, not the harness's breakage."""
    bits_per_second: float
    received_bytes: int
    retransmits: int | None = None  # the sender's count, where the kernel reports it
    error: str | None = None
    seconds: float | None = None  # how long the receiver took for them

    @property
    def mbps(self) -> float:
        return self.bits_per_second / 1e6

    @property
    def carried(self) -> bool:
        return self.error is None and self.received_bytes > 0

    def describe(self) -> str:
        if self.error:
            return f"iperf3 failed: {self.error}"
        took = "" if self.seconds is None else f" in {self.seconds:.3f} s"
        retransmits = "" if self.retransmits is None else f", {self.retransmits} retransmits"
        return f"{self.mbps:.1f} Mbit/s ({self.received_bytes} bytes received{took}{retransmits})"


def parse_iperf(output: str) -> Throughput:
    """iperf3 -J's report: the receiver's sum, or iperf3's error. Raises HarnessError when the output is not
    iperf3's JSON report at all."""
    try:
        report = json.loads(output[output.index("{"):])
    except ValueError:
        raise HarnessError(f"iperf3 did not report JSON: {output.strip()[:200]!r}") from None
    if report.get("error"):
        return Throughput(0.0, 0, error=str(report["error"]))
    try:
        received, sent = report["end"]["sum_received"], report["end"].get("sum_sent", {})
        seconds = received.get("seconds")
        return Throughput(float(received["bits_per_second"]), int(received["bytes"]), sent.get("retransmits"),
                          seconds=None if seconds is None else float(seconds))
    except (KeyError, TypeError, ValueError):
        raise HarnessError(f"iperf3's report has no end.sum_received: {output.strip()[:200]!r}") from None


@dataclass(frozen=True)
class RoundTrip:
    ping: Ping
    avg_ms: float | None  # None when nothing was answered

    def describe(self) -> str:
        rtt = "no answer" if self.avg_ms is None else f"avg {self.avg_ms:.3f} ms"
        return f"{self.ping.received}/{self.ping.sent} answered, {rtt}"


def parse_rtt(output: str) -> float | None:
    """The average round trip in ms from iputils ping's summary; None without one (nothing answered)."""
    match = RTT.search(output)
    return float(match.group(1)) if match else None


def round_trip(node: Node, dst: str, *, source: str | None = None, count: int = PINGS) -> RoundTrip:
    result = ping(node, dst, source=source, count=count, interval=PING_INTERVAL_S)
    return RoundTrip(result, parse_rtt(result.output))


def serve(server: Node, ports: tuple[int, ...]) -> None:
    """One one-off iperf3 server per port on `server`, all started at once; returns once all listen."""
    server.exec(["sh", "-c", " && ".join(f"iperf3 -s -1 -D -p {port}" for port in ports)],
                timeout=SERVER_TIMEOUT_S, check=True, what=f"iperf3 servers to start on {server.name}")
    wait_for(lambda: listening(server.exec(["ss", "-Hltn"], timeout=5, what="ss").output) >= set(ports),
             timeout=SERVER_TIMEOUT_S, interval=0.05,
             what=f"iperf3 to listen on {server.name} port {', '.join(map(str, ports))}")


def listening(ss_output: str) -> set[int]:
    """The TCP ports `ss -Hltn` shows listening (its fourth column: the local address and port)."""
    ports = set()
    for line in ss_output.splitlines():
        columns = line.split()
        if len(columns) > 3 and columns[3].rpartition(":")[2].isdigit():
            ports.add(int(columns[3].rpartition(":")[2]))
    return ports


def throughput(client: Node, dst: str, *, source: str | None = None, port: int = OVERLAY_PORT,
               seconds: int = SECONDS) -> Throughput:
    """One iperf3 TCP run of `seconds` from `client` (bound to `source`) to the one-off iperf3 server listening at
    `dst` on `port` (serve() started it)."""
    argv = ["iperf3", "-c", dst, "-p", str(port), "-t", str(seconds), "-J",
            "--connect-timeout", str(CONNECT_TIMEOUT_MS)]
    if source:
        argv += ["-B", source]
    try:
        result = client.exec(argv, timeout=seconds + CONNECT_TIMEOUT_MS / 1000 + 10,
                             what=f"iperf3 {source or client.name} -> {dst} ({seconds}-s TCP run)")
    except LabTimeout as exc:  # a connection that stalled mid-run: the path's failure, reported like iperf3's own
        return Throughput(0.0, 0, error=str(exc))
    return parse_iperf(result.output)


def tx_bytes(node: Node, interface: str = UNDERLAY_INTERFACE) -> int:
    result = node.exec(["cat", f"/sys/class/net/{interface}/statistics/tx_bytes"], timeout=5, check=True,
                       what=f"{interface}'s tx counter")
    return int(result.output.strip())


@dataclass(frozen=True)
class Tax:
    """Throughput and RTT through the overlay and on the underlay between the same two nodes."""
    overlay: Throughput
    underlay: Throughput
    overlay_rtt: RoundTrip
    underlay_rtt: RoundTrip
    underlay_bytes_during_overlay: int  # what the client's underlay interface sent during the overlay run
    seconds: int = SECONDS

    @property
    def underlay_carried_overlay(self) -> bool:
        """Every byte the overlay delivered left the client over the underlay (encapsulated: with more)."""
        return self.overlay.carried and self.underlay_bytes_during_overlay >= self.overlay.received_bytes

    def describe(self) -> str:
        return (f"{self.seconds}-second TCP runs, one way; RTT: {PINGS} echoes {PING_INTERVAL_S * 1000:g} ms apart\n"
                f"overlay:  {self.overlay.describe()}; RTT {self.overlay_rtt.describe()}\n"
                f"underlay: {self.underlay.describe()}; RTT {self.underlay_rtt.describe()}\n"
                f"the client's underlay interface sent {self.underlay_bytes_during_overlay} bytes "
                f"during the overlay run")

    def record(self, pair_lab, overhead_bytes: int | None = None) -> None:
        """Keep the figures in the case's matrix.json record (the matrix page's overlay tax table), and their
        account (iperf3's error for a run that failed) as overlay-tax.txt in the pair's folder."""
        account = self.describe() + ("" if overhead_bytes is None else f"\noverhead: {overhead_bytes} bytes per packet")
        (pair_lab.dir / "overlay-tax.txt").write_text(account + "\n")
        if self.overlay.carried:
            pair_lab.measure("overlay_mbps", self.overlay.mbps)
        if self.underlay.carried:
            pair_lab.measure("underlay_mbps", self.underlay.mbps)
        if self.overlay_rtt.avg_ms is not None:
            pair_lab.measure("overlay_rtt_ms", self.overlay_rtt.avg_ms)
        if self.underlay_rtt.avg_ms is not None:
            pair_lab.measure("underlay_rtt_ms", self.underlay_rtt.avg_ms)
        if overhead_bytes is not None:
            pair_lab.measure("overhead_bytes", overhead_bytes)
        pair_lab.measure("tax_seconds", self.seconds)


def measure(client: Node, server: Node, *, overlay: tuple[str, str], underlay: str,
            seconds: int = SECONDS) -> Tax:
    """The overlay run (from the overlay source to the overlay destination) and the underlay run (from the
    client's own address to `underlay`, the server's), one after the other, then the RTT of each. Never asserts:
    the case judges."""
    src, dst = overlay
    serve(server, (OVERLAY_PORT, UNDERLAY_PORT))
    before = tx_bytes(client)
    through = throughput(client, dst, source=src, port=OVERLAY_PORT, seconds=seconds)
    carried = tx_bytes(client) - before
    beside = throughput(client, underlay, port=UNDERLAY_PORT, seconds=seconds)
    return Tax(through, beside, round_trip(client, dst, source=src), round_trip(client, underlay), carried,
               seconds)


# --- the wire ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IpPacket:
    """A captured IP datagram's outermost header, as far as the overhead needs it."""
    number: int  # in the capture, 1-based (as Wireshark and the protocol wire readers count; reassembled: its last)
    src: str
    dst: str
    proto: int   # the upper layer (IPv6: past the extension headers)
    length: int  # the whole IP datagram: IPv4 total length, IPv6 payload length + 40 (reassembled: all of it)
    sport: int | None = None  # UDP and TCP
    dport: int | None = None
    head: bytes = b""  # the first bytes past the UDP header (past the IP header for anything but UDP)


def ip_packets(pcap, *, src: str | None = None, dst: str | None = None) -> list[IpPacket]:
    """The IP datagrams of a capture (from `src`, to `dst` if given), in capture order, read by the harness's one
    capture reader (harness.packets). Never raises on what the capture holds: a frame without IP is skipped, a
    missing capture is empty."""
    packets = []
    for d in Datagrams(pcap):
        if (src and d.src != src) or (dst and d.dst != dst):
            continue
        ports = d.ports if d.proto in (TCP, UDP) else None
        past = d.payload[8:] if d.proto == UDP else d.payload
        packets.append(IpPacket(d.number, d.src, d.dst, d.proto, d.length, ports[0] if ports else None,
                                ports[1] if ports else None, bytes(past[:HEAD])))
    return packets
