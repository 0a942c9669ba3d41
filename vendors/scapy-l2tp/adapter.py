"""scapy-l2tp, the harness's reference L2TPv2 peer: peer.py (built into the image) plays the LAC or the LNS on
the harness's own codec and user-space PPP endpoint, which `render` copies in beside it. Driven like xl2tpd,
through a FIFO: connect, disconnect, and probe (the robustness misbehaviour, see peer.py). See NOTES.md.
"""
from __future__ import annotations

import json

from harness.errors import HarnessError
from harness.protocols.l2tp.roles import L2tpEndpoint
from harness.protocols.l2tp.scenario import Scenario, Side
from harness.shipping import harness_files
from harness.waiting import wait_for

HOME = "/opt/scapy-l2tp"
# The harness's codec and PPP endpoint, as a package beside peer.py (which imports them from there).
SHIPPED = ("harness.protocols.l2tp.avp", "harness.protocols.l2tp.codec", "harness.protocols.l2tp.ppp")
CONFIG = "/etc/scapy-l2tp/config.json"
RUN = "/run/scapy-l2tp"
INTERFACE = "ppp0"
MTU = 1400


class ScapyL2tp(L2tpEndpoint):
    side: Side | None = None

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        self.side = side
        config = {
            "role": side.role, "address": side.address, "peer_address": side.peer_address,
            "hostname": side.hostname, "secret": side.secret, "hide_avps": scenario.hide_avps,
            "hidden_padding": scenario.hidden_padding,
            "hello_interval_s": scenario.hello_interval_s, "misbehave": side.misbehave,
            "local_inner": side.local_inner, "remote_inner": side.remote_inner,
            "ppp_auth": scenario.ppp_auth, "username": scenario.username, "password": scenario.password,
            "interface": INTERFACE, "mru": MTU,
            # RFC 2661 5.8: None keeps peer.py's own (1 s, doubling to 8 s, 5 retransmissions)
            "retransmit_s": scenario.retransmit_s, "max_retransmissions": scenario.max_retransmissions,
        }
        return {CONFIG: json.dumps(config, indent=2) + "\n", **harness_files(*SHIPPED, under=HOME)}

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            self.node.ensure_running()  # a peer that died is reported at once, with its last log lines
            return self.node.exec(["test", "-e", f"{RUN}/ready"], timeout=5).ok
        wait_for(ready, timeout=timeout, interval=0.05, what=f"scapy-l2tp on {self.node.name} to write {RUN}/ready")

    def _command(self, command: str, timeout: float) -> None:
        self.node.exec(["sh", "-c", f"echo {command} > {RUN}/control"], timeout=timeout,
                       what=f"'{command}' on scapy-l2tp's control FIFO", check=True)

    def state(self) -> dict:
        shown = self.node.exec(["cat", f"{RUN}/state.json"], timeout=5)
        try:
            return json.loads(shown.output) if shown.ok else {}
        except ValueError:
            raise HarnessError(f"{self.node.name}: {RUN}/state.json is not JSON: {shown.output[:200]!r}") from None

    def connect(self, timeout: float) -> None:
        self._command("connect", timeout)

    def disconnect(self, timeout: float) -> None:
        """CDN, then StopCCN; returns once the StopCCN is acknowledged (or the peer stopped first)."""
        self._command("disconnect", timeout)
        wait_for(lambda: self.state().get("tunnel") == "closed", timeout=timeout, interval=0.05,
                 what=f"scapy-l2tp on {self.node.name} to see its StopCCN acknowledged")

    def probe(self, timeout: float) -> None:
        self._command("probe", timeout)
        wait_for(lambda: self.state().get("probe_done"), timeout=timeout, interval=0.05,
                 what=f"scapy-l2tp on {self.node.name} to carry out its probe ({self.side.misbehave})")

    def inner_interface(self) -> str | None:
        return self._holding(INTERFACE, self.side.local_inner if self.side else None)

    def version(self) -> str:
        return self.node.exec(["python3", f"{HOME}/peer.py", "--version"], timeout=10, check=True).output.strip()
