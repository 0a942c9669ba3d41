"""The `vxlan_pair` fixture: VTEPs from two vendors on one lab underlay network, vtep1's underlay captured.
Suites call `start(scenario)`, send traffic between the inner hosts, and judge the pings and the wire.

A scenario with three VTEPs gets a second instance of the second vendor as vtep3 (head-end replication,
MAC moves). In the cases marked `probes` the harness's built-in probe is the prober and plays vtep1 (PROBE_ROLE,
harness.pairlab): vtep1 is then a plain node of the tools image that sends frames the harness built
(`inject`), and the judged side, the vendor's vtep2, is the one captured."""
from __future__ import annotations

import os
from functools import cached_property

import pytest

from harness.capture import Capture
from harness.errors import CaptureError
from harness.host import HostCapabilities
from harness.images import Images
from harness.lab import Node, start_all, together
from harness.pairlab import PairLab
from harness.peer import Reply, UdpPeer
from harness.ping import Ping, ping
from harness.protocols.vxlan import ROLES
from harness.protocols.vxlan.roles import VtepEndpoint
from harness.protocols.vxlan.scenario import VXLAN_PORT, Scenario, Segment, Side
from harness.protocols.vxlan.ladder import write_ladder
from harness.protocols.vxlan.transcript import transcript
from harness.protocols.vxlan.wire import Wire

SETUP_TIMEOUT_S = 30
# In a microVM each ovs-vsctl takes 4-5 s under load: setup gets longer there, though not time_scale times as long.
VM_SETUP_TIMEOUT_S = 120
NAMES = ("vtep1", "vtep2", "vtep3")
INJECT_WAIT_S = 0.5  # how long the injecting peer listens after each frame


class Segments:
    """What a pair of VTEPs answers about its segments and addresses, for VXLAN and for any control plane over it
    (the evpn package): the lab network, the VTEP nodes and sides, the scenario and the capture, set up here; a
    subclass adds its endpoints and writes its evidence (`_write_transcript`, run after the capture stopped)."""

    def __init__(self, pair_lab: PairLab, host: HostCapabilities, tools_image: str):
        self.pair_lab = pair_lab
        self.host = host
        self.tools_image = tools_image
        self.network = pair_lab.lab.network()
        self.nodes: dict[str, Node] = {}
        self.sides: dict[str, Side] = {}
        self.scenario = None  # the subclass's Scenario, once started
        self.capture: Capture | None = None
        self._pcap = pair_lab.dir / "capture.pcap"
        pair_lab.on_teardown(self._write_transcript)  # finalizers run last-registered first: after the stop
        pair_lab.on_teardown(self._stop_capture)

    def vendor_name(self, name: str) -> str:
        return self.pair_lab.pair.vendor(name).name  # a third VTEP is the second vendor again

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self.scenario.segments

    def inner_address(self, name: str, segment: Segment | None = None) -> str:
        return self.sides[name].inner_address(segment or self.segments[0])

    def inner_mac(self, name: str, segment: Segment | None = None) -> str:
        return self.sides[name].inner_mac(segment or self.segments[0])

    def address(self, name: str) -> str:
        """The VTEP's underlay address."""
        return self.nodes[name].address

    def explain(self) -> str:
        """Every VTEP's last log lines: the failure message of a case (needs `vendor_name(name)` too)."""
        lines = []
        for name, node in self.nodes.items():
            lines.append(f"--- {name} ({self.vendor_name(name)}) {node.address}, log (last lines)")
            lines.append("\n".join(node.logs().rstrip().splitlines()[-8:]))
        return "\n".join(lines)

    def _stop_capture(self) -> None:
        if self.capture is not None:
            self.capture.stop(self._pcap)


class VxlanPair(Segments):
    def __init__(self, pair_lab: PairLab, host: HostCapabilities, tools_image: str):
        super().__init__(pair_lab, host, tools_image)
        self.endpoints: dict[str, VtepEndpoint] = {}
        self.scenario: Scenario | None = None
        self._peers: dict[str, UdpPeer] = {}

    def start(self, scenario: Scenario) -> "VxlanPair":
        """Create the VTEPs, capture the underlay from the first packet on, and build every VTEP for the
        scenario (in parallel: each is independent until traffic flows)."""
        self.scenario = scenario
        names = NAMES[:scenario.vtep_count]
        for name in names:
            if name == self.pair_lab.prober:  # the built-in probe: no daemon, only the frames a case injects
                self.nodes[name] = self.pair_lab.probe_node(self.network)
            else:
                self.nodes[name] = self.pair_lab.node(name, network=self.network)
                self.endpoints[name] = self.pair_lab.pair.vendor(name).adapter_class()(
                    self.nodes[name], self.pair_lab.kernel(name, self.host))
        for index, name in enumerate(names, start=1):
            endpoint = self.endpoints.get(name)
            self.sides[name] = Side(
                name=name, index=index, address=self.nodes[name].address,
                prefix_len=self.network.subnet.prefixlen,
                peers=tuple(self.nodes[n].address for n in names if n != name),
                port=scenario.port_for(endpoint.default_port if endpoint else VXLAN_PORT),
                segments=scenario.segments, encapsulation=scenario.encapsulation,
                geneve_options=scenario.geneve_options)
            if endpoint:
                self.pair_lab.install(name, endpoint.render(scenario, self.sides[name]))
        start_all(self.nodes.values())
        captured = self.pair_lab.judged or ROLES[0]
        # Before any VTEP is built, so the wire is complete from its first frame (the nodes send nothing yet).
        self.capture = Capture(self.pair_lab.lab, self.nodes[captured], self.tools_image).start()
        self.pair_lab.mark("lab up")
        timeout = self.pair_lab.patience(SETUP_TIMEOUT_S, most=VM_SETUP_TIMEOUT_S)
        together(lambda name: self.endpoints[name].setup(scenario, self.sides[name], timeout), self.endpoints)
        for name, endpoint in self.endpoints.items():
            if name in ROLES:
                self.pair_lab.record_version(name, endpoint.version)
        self.pair_lab.mark("daemons ready")  # VXLAN negotiates nothing: the data plane is up once built
        return self

    # --- the inner hosts: Segments ---------------------------------------------------------------------

    def port(self, name: str) -> int:
        return self.sides[name].port

    def ping(self, src: str, dst: str, segment: Segment | None = None, **kwargs) -> Ping:
        """ICMP echo from `src`'s inner host to `dst`'s inner address in `segment` (the first by default)."""
        segment = segment or self.segments[0]
        return ping(self.nodes[src], self.inner_address(dst, segment),
                    source=self.endpoints[src].inner_interface(segment), **kwargs)

    def udp_flows(self, src: str, dst: str, count: int, port: int = 5001, segment: Segment | None = None) -> None:
        """`count` inner UDP datagrams from `src`'s inner host to `dst`'s, each from a new socket (so a new
        source port: a new flow)."""
        target = self.inner_address(dst, segment)
        self.nodes[src].exec(["bash", "-c", f"for i in $(seq {count}); do echo flow$i > /dev/udp/{target}/{port}; "
                                            "sleep 0.05; done"], timeout=count + 5, check=True,
                             what=f"{count} UDP flows to {target}:{port}")

    def learned(self, name: str, segment: Segment | None = None) -> dict[str, str]:
        """What `name`'s VTEP has learned: inner MAC -> remote VTEP underlay address."""
        return self.endpoints[name].learned(segment or self.segments[0])

    def set_mac(self, name: str, mac: str, segment: Segment | None = None) -> None:
        """Give `name`'s inner host another MAC (a host moving, or leaving)."""
        interface = self.endpoints[name].inner_interface(segment or self.segments[0])
        self.nodes[name].exec(["ip", "link", "set", "dev", interface, "address", mac], timeout=10, check=True,
                              what=f"setting {interface}'s MAC to {mac}")

    # --- the harness's own frames -----------------------------------------------------------------------

    def inject(self, src: str, dst: str, payloads: list[bytes], *, wait: float = INJECT_WAIT_S) -> list[Reply]:
        """Send overlay payloads (frames.vxlan(...)) as UDP from `src`'s underlay address to `dst`'s VTEP port.
        From a peer in `src`'s namespace on a port of its own when `src` is a vendor's VTEP; from the VTEP
        port itself when `src` is the harness's built-in probe."""
        if src not in self._peers:
            self._peers[src] = UdpPeer(self.pair_lab.lab, self.nodes[src], self.tools_image, name="inject")
        sport = self.sides[src].port if src not in self.endpoints else 40000 + int.from_bytes(os.urandom(1), "big")
        return self._peers[src].exchange(payloads, to=(self.address(dst), self.port(dst)), sport=sport, wait=wait,
                                         zero_checksum=True)

    # --- the wire ----------------------------------------------------------------------------------------

    def wire(self) -> Wire:
        """Stop the capture (the pcap is complete from here on) and read it. All traffic must come before.
        CaptureError (a broken cell) if tcpdump lost packets or left the file missing, empty or damaged."""
        return self._wire

    @cached_property
    def _wire(self) -> Wire:
        return Wire.from_pcap(self.capture.stop(self._pcap), ports=self._ports())

    def _ports(self) -> dict[int, str]:
        """The UDP ports in use, and what they carry (a port beyond IANA's, e.g. Linux's 8472, is read too)."""
        return {side.port: side.encapsulation for side in self.sides.values()}

    def _write_transcript(self) -> None:
        """transcript.txt and ladder.svg beside the capture (the built-in probe's lifeline is named after it,
        "probe")."""
        if self._pcap.exists():  # from the Wire the case read (or reads now): the pcap is read once
            try:
                wire = self.wire()
            except CaptureError:  # a capture unfit for a verdict is still evidence: show what it holds
                wire = Wire.from_pcap(self._pcap, ports=self._ports())
            (self.pair_lab.dir / "transcript.txt").write_text(transcript(wire) + "\n")
            write_ladder(self.pair_lab, wire, {name: node.address for name, node in self.nodes.items()})


@pytest.fixture
def vxlan_pair(pair_lab: PairLab, host: HostCapabilities, images: Images) -> VxlanPair:
    return VxlanPair(pair_lab, host, images.tools())
