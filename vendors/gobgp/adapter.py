"""GoBGP as a BGP EVPN speaker, a control-plane peer: gobgpd holds the EVPN routes in its global RIB; the adapter
adds this VTEP's own routes with the CLI (`gobgp global rib -a evpn add`): per segment an Inclusive Multicast
route with a PMSI tunnel attribute (ingress replication, the VNI as label), and a MAC/IP route for the segment's
inner host (a control-plane peer has no bridge to learn it from: the host it serves is configured). GoBGP derives
no route targets: each route carries the scenario's RT explicitly.

No data plane: nothing programs a kernel VTEP from what gobgpd learns, so `fdb` is empty and the vendor declares
no `data_plane` (vendor.toml says why); the inner host's port is put on a bridge of its own, going nowhere.
"""
from __future__ import annotations

import json

from harness.errors import HarnessError
from harness.protocols.evpn.roles import EvpnVtep
from harness.protocols.evpn.scenario import HOLD_S, KEEPALIVE_S, Scenario, Side
from harness.protocols.vxlan.scenario import Segment
from harness.waiting import wait_for

CONFIG = "/etc/gobgpd/gobgpd.toml"


class GoBgpSpeaker(EvpnVtep):
    side: Side | None = None

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        lines = ["[global.config]", f"  as = {side.asn}", f'  router-id = "{side.address}"', ""]
        for peer in side.peers:
            lines += ["[[neighbors]]", "  [neighbors.config]", f'    neighbor-address = "{peer.address}"',
                      f"    peer-as = {peer.asn}", "  [neighbors.timers.config]", f"    hold-time = {HOLD_S}",
                      f"    keepalive-interval = {KEEPALIVE_S}", "  [[neighbors.afi-safis]]",
                      "    [neighbors.afi-safis.config]", '      afi-safi-name = "l2vpn-evpn"', ""]
        return {CONFIG: "\n".join(lines)}

    def _gobgp(self, *argv: str, what: str, check: bool = True) -> str:
        return self.node.exec(["gobgp", *argv], timeout=10, check=check, what=what).output

    def _rd(self, segment: Segment) -> str:
        return f"{self.side.address}:{segment.vni}"

    def _multicast(self, segment: Segment) -> list[str]:
        side = self.side
        return ["multicast", side.address, "etag", "0", "rd", self._rd(segment), "rt", side.route_targets[segment.vni],
                "encap", "vxlan", "pmsi", "ingress-repl", str(segment.vni), side.address]

    def _macadv(self, segment: Segment) -> list[str]:
        side = self.side
        return ["macadv", side.inner_mac(segment), side.inner_address(segment), "etag", "0", "label",
                str(segment.vni), "rd", self._rd(segment), "rt", side.route_targets[segment.vni], "encap", "vxlan"]

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        self.side = side
        self.bridge_host_ports(side, timeout)
        wait_for(lambda: self.node.ensure_running() or self.node.exec(["gobgp", "global"], timeout=5).ok,
                 timeout=timeout, interval=0.2, what="gobgpd's API to answer")
        for segment in side.segments:
            self._gobgp("global", "rib", "-a", "evpn", "add", *self._multicast(segment),
                        what=f"adding the Inclusive Multicast route for VNI {segment.vni}")
            self._gobgp("global", "rib", "-a", "evpn", "add", *self._macadv(segment),
                        what=f"adding the MAC/IP route of VNI {segment.vni}'s host")

    def established(self) -> set[str]:
        out = self._gobgp("neighbor", "-j", what="GoBGP's neighbors", check=False)
        try:
            neighbors = json.loads(out or "[]")
        except json.JSONDecodeError:
            return set()
        up = set()
        for neighbor in neighbors or []:
            state = str(neighbor.get("state", {}).get("session_state", "")).lower()
            if state in ("established", "6"):
                up.add(neighbor.get("conf", {}).get("neighbor_address") or neighbor.get("state", {}).get(
                    "neighbor_address"))
        return up

    def fdb(self, segment: Segment) -> list[dict]:
        return []  # no data plane (see the module's docstring)

    def host_left(self, segment: Segment) -> None:
        self._gobgp("global", "rib", "-a", "evpn", "del", *self._macadv(segment),
                    what=f"withdrawing the MAC/IP route of VNI {segment.vni}'s host")

    def withdraw_vni(self, segment: Segment) -> None:
        self.host_left(segment)
        self._gobgp("global", "rib", "-a", "evpn", "del", *self._multicast(segment),
                    what=f"withdrawing the Inclusive Multicast route for VNI {segment.vni}")

    def stop(self) -> None:
        # gobgpd is the node's PID 1: stopping the container is its crash (no NOTIFICATION)
        try:
            self.node.container.kill()
        except Exception as exc:  # docker's own error: the case cannot go on as written
            raise HarnessError(f"{self.node.name}: could not stop gobgpd: {exc}") from None

    def version(self) -> str:
        out = self.node.exec(["gobgpd", "--version"], timeout=10, what="gobgpd's version").output.strip()
        return f"GoBGP {out.split()[-1]}" if out else "GoBGP (unknown)"
