"""vpnc as an IKEv1 remote-access initiator: Aggressive Mode with the group's PSK and name (ID_KEY_ID), XAUTH with a
user name and password, Mode Config for its inner address, then Quick Mode, and ESP in user space over a TUN device.

vpnc is a client, not a daemon: the node idles (`sleep infinity`) and initiate() runs vpnc in the foreground inside
it, its output going to PID 1's stdout so that it is the node's log. vpnc reports no SAs; what it did is judged from
the wire. See NOTES.md.
"""
from __future__ import annotations

import re
import shlex
import time

from harness.errors import ConfigError, HarnessError
from harness.protocols.ipsec.roles import ChildSa, IPsecEndpoint, Outcome
from harness.protocols.ipsec.scenario import Scenario, Side

CONFIG = "/etc/vpnc/lab.conf"
PIDFILE = "/run/vpnc.pid"
SCRIPT = "/usr/local/sbin/lab-vpnc-script"
LOG = "/proc/1/fd/1"  # PID 1's stdout: the node's log (docker logs)
POLL_S = 0.2
# vpnc 0.5.3 prints this once Quick Mode has set up the IPsec SA and its ESP loop runs (vpnc.c, after setup_link).
STARTED = "VPNC started in foreground"
# vpnc's own words for an XAUTH the gateway refused, and for a phase 1 it could not finish.
AUTH_FAILED = re.compile(r"authentication unsuccessful|xauth.*fail|INVALID[-_]HASH|AUTHENTICATION[-_]FAILED", re.I)

WEAK = {"ENCR_3DES", "ENCR_DES"}  # vpnc's "weak encryption"
# vpnc's "IKE DH Group": the MODP groups it knows (RFC 2409 6, RFC 3526), by the scenario's names.
DH_GROUPS = {"MODP_768": "dh1", "MODP_1024": "dh2", "MODP_1536": "dh5", "MODP_2048": "dh14", "MODP_3072": "dh15",
             "MODP_4096": "dh16", "MODP_6144": "dh17", "MODP_8192": "dh18"}


class Vpnc(IPsecEndpoint):
    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        if side.role != "initiator":
            raise ConfigError("vendors/vpnc/vendor.toml", "roles", "vpnc is a client: it plays the initiator only")
        if not scenario.remote_access:
            raise ConfigError("scenario", "remote_access", "vpnc does IKEv1 remote access only (remote_access)")
        # vpnc offers every cipher and hash it knows in phase 1 and in Quick Mode (not configurable), with one DH
        # group: the scenario's first proposal's.
        group = scenario.ike_of(side.role)[0].group
        if group not in DH_GROUPS:
            raise ConfigError("scenario", "ike", f"vpnc offers only the groups {', '.join(DH_GROUPS)}, not {group}")
        lines = [
            f"IPSec gateway {side.peer_address}",
            f"IPSec ID {scenario.group}",
            f"IPSec secret {scenario.psk_of(side.role)}",
            f"Xauth username {scenario.xauth_user}",
            f"Xauth password {scenario.xauth_password}",
            "IKE Authmode psk",
            f"IKE DH Group {DH_GROUPS[group]}",
            "Perfect Forward Secrecy " + (_pfs(scenario.esp_of(side.role)[0].group)),
            # natt: float to UDP 4500 and encapsulate ESP where NAT-D shows a NAT (RFC 3947), as a gateway on
            # libipsec makes it show; plain ESP otherwise
            "NAT Traversal Mode natt",
            # Quick Mode's IDcr: the responder's subnet (vpnc's default, 0.0.0.0/0, a gateway must narrow)
            f"IPSEC target network {side.peer_subnet}",
            "Local Port 500",
            "Interface name tun0",
            "Interface mode tun",
            f"Pidfile {PIDFILE}",
            "No Detach",
            "Noninteractive",
            "Debug 1",
            # vpnc runs the script through /bin/sh: the argument is the responder's subnet, routed into the tunnel
            f"Script {SCRIPT} {side.peer_subnet}",
        ]
        if any(p.encryption in WEAK for p in (*scenario.ike_of(side.role), *scenario.esp_of(side.role))):
            # vpnc offers 3DES but refuses a gateway's choice of it ("This algorithm is considered too weak
            # today") unless told: where the scenario asks for it, it is what the case wants
            lines.append("Enable weak encryption")
        return {CONFIG: "\n".join(lines) + "\n"}

    def wait_ready(self, timeout: float) -> None:
        self.node.ensure_running()  # nothing runs before initiate(): the node only has to be up

    def load(self) -> None:
        pass  # vpnc reads its config when initiate() starts it

    def add_inner_address(self, address: str) -> None:
        pass  # the inner address is the one Mode Config gives; the script puts it on tun0

    def initiate(self, timeout: float) -> Outcome:
        # stdbuf: vpnc prints with stdio, which buffers a pipe fully: STARTED would sit in its buffer
        self.node.exec(["sh", "-c", f"stdbuf -oL vpnc {shlex.quote(CONFIG)} >{LOG} 2>&1 &"], timeout=5, check=True,
                       what="starting vpnc")
        deadline = time.monotonic() + timeout
        while True:
            log = self.node.logs()
            if STARTED in log:
                return Outcome(established=True, auth_failed=False, detail=STARTED)
            running = self.node.exec(["pgrep", "-x", "vpnc"], timeout=5).ok
            if not running or time.monotonic() >= deadline:
                last = log.strip().splitlines()[-1:] or ["vpnc said nothing"]
                why = last[0] if not running else f"no '{STARTED}' after {timeout:g}s: {last[0]}"
                return Outcome(established=False, auth_failed=bool(AUTH_FAILED.search(log)), detail=why)
            time.sleep(POLL_S)

    def child_sas(self) -> list[ChildSa]:
        """vpnc has no way to list its SAs: none are reported (the wire and the responder say what there is)."""
        return []

    def terminate(self, timeout: float) -> None:
        # SIGTERM: vpnc sends Delete for its IPsec SA and ISAKMP SA (Informational) and exits
        result = self.node.exec(["sh", "-c", f"kill $(cat {PIDFILE})"], timeout=5)
        if not result.ok:
            raise HarnessError(f"{self.node.name}: could not stop vpnc: {result.output.strip()}")
        deadline = time.monotonic() + timeout
        while self.node.exec(["pgrep", "-x", "vpnc"], timeout=5).ok and time.monotonic() < deadline:
            time.sleep(POLL_S)

    def version(self) -> str:
        # "vpnc version 0.5.3+git20220927-1" is the first line of `vpnc --version`
        return self.node.exec(["vpnc", "--version"], timeout=5).output.strip().splitlines()[0]


def _pfs(group: str | None) -> str:
    """vpnc's "Perfect Forward Secrecy": a Quick Mode KE of this group, or none."""
    if group is None:
        return "nopfs"
    if group not in DH_GROUPS:
        raise ConfigError("scenario", "esp", f"vpnc does PFS only with {', '.join(DH_GROUPS)}, not {group}")
    return DH_GROUPS[group]
