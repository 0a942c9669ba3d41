"""scapy-vtep, the harness's own reference VTEP: one Python program (scapy-vtep, built into the image) that
reads a JSON configuration, makes a TAP device per segment and does VXLAN or Geneve flood-and-learn in user
space. The node's kernel is the inner host on each TAP. See NOTES.md.
"""
from __future__ import annotations

import json

from harness.errors import HarnessError
from harness.protocols.vxlan.roles import VtepEndpoint
from harness.protocols.vxlan.scenario import GENEVE_OPTION, UNDERLAY_MTU, VXLAN_OVERHEAD, Scenario, Segment, Side
from harness.waiting import wait_for

CONFIG = "/etc/scapy-vtep/config.json"
RUN_DIR = "/run/scapy-vtep"


def device(segment: Segment) -> str:
    return f"vx{segment.vni}"  # at most 10 characters (VNIs are 24 bits): inside IFNAMSIZ


class ScapyVtep(VtepEndpoint):
    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        geneve_options = side.encapsulation == "geneve" and side.geneve_options
        option_bytes = 4 + len(GENEVE_OPTION["data"]) if geneve_options else 0
        config = {
            "address": side.address,
            "port": side.port,
            "encapsulation": side.encapsulation,
            "peers": list(side.peers),
            "geneve_option": ({"class": GENEVE_OPTION["class"], "type": GENEVE_OPTION["type"],
                               "data": GENEVE_OPTION["data"].hex()} if geneve_options else None),
            "segments": [{"vni": s.vni, "device": device(s), "address": side.inner_address(s),
                          "prefix_len": s.prefix_len, "mac": side.inner_mac(s),
                          "mtu": UNDERLAY_MTU - VXLAN_OVERHEAD - option_bytes}
                         for s in side.segments],
        }
        return {CONFIG: json.dumps(config, indent=2) + "\n"}

    def setup(self, scenario: Scenario, side: Side, timeout: float) -> None:
        # Everything is built by the program from the rendered configuration; it says ready when it forwards.
        def ready() -> bool:
            self.node.ensure_running()  # a program that died is reported at once, with its last log lines
            return self.node.exec(["test", "-e", f"{RUN_DIR}/ready"], timeout=5).ok
        wait_for(ready, timeout=timeout, what=f"scapy-vtep on {self.node.name} to write {RUN_DIR}/ready")

    def inner_interface(self, segment: Segment) -> str:
        return device(segment)

    def learned(self, segment: Segment) -> dict[str, str]:
        path = f"{RUN_DIR}/fdb-{segment.vni}.json"
        result = self.node.exec(["cat", path], timeout=5, check=True)
        try:
            return json.loads(result.output)
        except ValueError:
            raise HarnessError(f"{self.node.name}: {path} is not JSON: {result.output[:200]!r}") from None

    def version(self) -> str:
        return self.node.exec(["scapy-vtep", "--version"], timeout=10, check=True).output.strip()
