"""The harness's reference BGP EVPN speaker (speaker.py): a passive BGP speaker that sends, as built, the messages
a case makes with the harness's codec. As a VTEP it announces per segment an Inclusive Multicast route (PMSI
ingress replication, the VNI as label) and a MAC+IP route for the segment's inner host, with the scenario's
route targets and the VXLAN encapsulation community; it installs nothing (no data plane)."""
from __future__ import annotations

import ipaddress
import json
from itertools import count

from harness.errors import HarnessError
from harness.protocols.evpn import bgp
from harness.protocols.evpn.roles import EvpnVtep, RouteSender
from harness.protocols.evpn.scenario import HOLD_S, Scenario, Side
from harness.protocols.vxlan.scenario import Segment
from harness.shipping import harness_files
from harness.waiting import wait_for

HOME = "/opt/scapy-bgp"
CONFIG = "/etc/scapy-bgp/config.json"
RUN = "/run/scapy-bgp"


class ScapyBgpSpeaker(EvpnVtep, RouteSender):
    side: Side | None = None
    listens_only = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sequence = count(1)

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        config = {"asn": side.asn, "router_id": side.address, "hold": HOLD_S, "peers": [p.address for p in side.peers]}
        return {CONFIG: json.dumps(config, indent=2) + "\n", **harness_files("harness.protocols.evpn.bgp", under=HOME)}

    def rd(self, segment: Segment) -> str:
        return f"{self.side.address}:{segment.vni}"

    def communities(self, segment: Segment) -> list:
        return [bgp.route_target(self.side.route_targets[segment.vni]), bgp.ExtEncapsulation(tunnel_type=8)]

    def flood_route(self, segment: Segment):
        return bgp.inclusive_multicast_route(self.rd(segment), self.side.address)

    def host_route(self, segment: Segment):
        return bgp.mac_ip_route(self.rd(segment), self.side.inner_mac(segment), segment.vni,
                                self.side.inner_address(segment))

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        self.side = side
        self.bridge_host_ports(side, timeout)
        wait_for(lambda: self.node.ensure_running() or "listening on" in self.node.logs(), timeout=timeout,
                 interval=0.1, what="the scapy-bgp speaker to listen")
        for segment in side.segments:
            self.send(bgp.update(reach=[self.flood_route(segment)], next_hop=side.address,
                                 communities=self.communities(segment), **side.session_attributes(),
                                 pmsi=bgp.ingress_replication(segment.vni, side.address)), f"flood-{segment.vni}")
            self.send(bgp.update(reach=[self.host_route(segment)], next_hop=side.address,
                                 communities=self.communities(segment), **side.session_attributes()),
                      f"host-{segment.vni}")

    def send(self, raw: bytes, name: str, once: bool = False) -> None:
        # written aside, then renamed: the speaker never reads half a file
        final = f"{RUN}/out/{next(self._sequence):04d}-{name}{'.once' if once else ''}.msg"
        self.node.put_files({final + ".part": raw})
        self.node.exec(["mv", final + ".part", final], timeout=10, check=True, what=f"queueing {name}")

    def established(self) -> set[str]:
        out = self.node.exec(["ls", f"{RUN}/established"], timeout=10).output
        return {line.strip() for line in out.splitlines() if _is_address(line.strip())}

    def fdb(self, segment: Segment) -> list[dict]:
        return []

    def host_left(self, segment: Segment) -> None:
        self.send(bgp.update(withdraw=[self.host_route(segment)]), f"host-{segment.vni}-gone")

    def withdraw_vni(self, segment: Segment) -> None:
        self.send(bgp.update(withdraw=[self.host_route(segment), self.flood_route(segment)]), f"vni-{segment.vni}-gone")

    def stop(self) -> None:
        try:
            self.node.container.kill()
        except Exception as exc:
            raise HarnessError(f"{self.node.name}: could not stop the speaker: {exc}") from None

    def version(self) -> str:
        out = self.node.exec(["python3", "-c", "import scapy; print(scapy.__version__)"], timeout=10).output.strip()
        return f"scapy-bgp (scapy {out})"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
