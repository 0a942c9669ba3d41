"""l2tpns as an L2TP LNS: L2TP and PPP both terminated in the one l2tpns process, every session's IP traffic
routed through a single TUN device (tun0) that holds the LNS end of the sessions.

l2tpns authenticates PPP users against RADIUS only (no local user list), so this vendor brings a companion
node: FreeRADIUS, built from radius/ (its own image) and started on the pair's network before l2tpns:
`companions()` says what it needs (harness.vendor.Companion) and the harness hands the started node back in
`use_companions()` (see NOTES.md for what was verified).
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from harness.errors import ConfigError, HarnessError
from harness.lab import Node
from harness.protocols.l2tp.roles import L2tpEndpoint
from harness.protocols.l2tp.scenario import Scenario, Side
from harness.vendor import Companion
from harness.waiting import wait_for

TUN_DEVICE = "tun0"
RADIUS_SECRET = "interop-radius"  # between l2tpns and its own companion only: not the scenario's to choose
RADIUS_CONFIG = "/etc/freeradius/3.0"
MASTER_LOG = "I am declaring myself the master!"
CLUSTER_HB_INTERVAL = 1  # tenths of a second: the shortest l2tpns takes
CLUSTER_HB_TIMEOUT = 4 * CLUSTER_HB_INTERVAL + 11  # the least l2tpns accepts with that interval (it raises less)


def _instant(rfc3339: str) -> datetime:
    """Docker's timestamps carry nanoseconds ("2026-11-24T06:53:16.123456789Z"); datetime takes microseconds."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", rfc3339).replace("Z", "+00:00"))


def _quote(value: str, what: str) -> str:
    # startup-config strings are double-quoted with no escape syntax
    if '"' in value or "\n" in value:
        raise ConfigError("scenario", what, f"l2tpns cannot take {value!r} (a double quote or newline)")
    return f'"{value}"'


class L2tpns(L2tpEndpoint):
    radius: Node | None = None
    side: Side | None = None

    def companions(self, scenario: Scenario, side: Side) -> list[Companion]:
        """The RADIUS server holding the scenario's PPP user; its only client is this node."""
        if scenario.ppp_auth == "none":
            raise ConfigError("scenario", "ppp_auth", "l2tpns always authenticates PPP users (pap or chap)")
        clients = (f"client l2tpns {{\n\tipaddr = {side.address}\n\tsecret = {RADIUS_SECRET}\n"
                   f"\tshortname = l2tpns\n\tnas_type = other\n}}\n")
        # Cleartext-Password serves both PAP and CHAP (the CHAP module hashes it with the request's challenge).
        # Framed-IP-Address: the address the LAC end gets (l2tpns prefers it over its pool).
        users = (f'{_quote(scenario.username, "username")} Cleartext-Password := '
                 f'{_quote(scenario.password, "password")}\n'
                 f"\tService-Type = Framed-User,\n\tFramed-Protocol = PPP,\n"
                 f"\tFramed-IP-Address = {side.remote_inner}\n")
        return [Companion("radius", Path(__file__).parent / "radius",
                          {f"{RADIUS_CONFIG}/clients.conf": clients,
                           f"{RADIUS_CONFIG}/mods-config/files/authorize": users},
                          ready_log="Ready to process requests")]

    def use_companions(self, nodes: dict[str, Node]) -> None:
        """Called by the harness once the companions are created (their addresses known), before render."""
        self.radius = nodes["radius"]

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        if self.radius is None:
            raise HarnessError(f"{self.node.name}: l2tpns needs its RADIUS companion before render "
                               f"(companions() / use_companions())")
        if scenario.ppp_auth == "none":
            raise ConfigError("scenario", "ppp_auth", "l2tpns always authenticates PPP users (pap or chap)")
        # Not configurable: l2tpns sends a HELLO after 60 s without a control message (verified: 60.1 s), the
        # scenario's default. Another interval would be silently ignored, so refuse it.
        # scenario.hello_interval_s is not l2tpns's to follow: its Hello interval is fixed at 60 s (so it does not
        # declare "hello"; a keepalive case is driven by the other side).
        # Nor are scenario.retransmit_s / max_retransmissions (RFC 2661 5.8): built in, so it does not declare
        # "retransmit_timers" and no wait counts on them.
        self.side = side
        lines = [
            "set debug 3",
            # no log_file: l2tpns logs to stderr (docker logs)
            'set pid_file ""',
            f"set hostname {_quote(side.hostname, 'hostname')}",
            f"set bind_address {side.address}",
            # tun0's address, and the address IPCP offers as the LNS end of every session
            f"set iftun_address {side.local_inner}",
            f"set peer_address {side.local_inner}",
            "set send_garp no",
            "set primary_dns 0.0.0.0",
            "set secondary_dns 0.0.0.0",
            f"set primary_radius {self.radius.address}",
            f"set radius_secret {_quote(RADIUS_SECRET, 'radius secret')}",
            f"set radius_authtypes {_quote(scenario.ppp_auth, 'ppp_auth')}",
            "set radius_accounting no",
            "set cli_bind_address 127.0.0.1",
            # l2tpns always runs as a cluster member: it starts as a slave, ignores SCCRQs (no answer at all)
            # until no master has sent a heartbeat for cluster_hb_timeout, then declares itself master. It looks
            # every cluster_hb_interval and raises a timeout below 4 intervals + 1.1 s to that floor (both in
            # tenths of a second; defaults 5 and 150, and 1 gave 31: master 3.1 s after start). The shortest
            # interval, 1, makes the floor 15: master 1.5 s after start. The master then heartbeats to
            # 239.192.13.13 every 0.1 s, in every capture (readers skip it: not L2TP).
            f"set cluster_hb_interval {CLUSTER_HB_INTERVAL}",
            f"set cluster_hb_timeout {CLUSTER_HB_TIMEOUT}",
        ]
        if side.secret is not None:
            lines.append(f"set l2tp_secret {_quote(side.secret, 'secret')}")
        return {"/etc/l2tpns/startup-config": "\n".join(lines) + "\n",
                # One address: the LAC end, whatever RADIUS says (it says the same).
                "/etc/l2tpns/ip_pool": f"{side.remote_inner}\n"}

    def wait_ready(self, timeout: float) -> None:
        # Bound to UDP 1701 is not ready: a cluster slave drops every SCCRQ unanswered (see render).
        def master() -> bool:
            self.node.ensure_running()
            return MASTER_LOG in self._log_since_start()
        wait_for(master, timeout=timeout, what=f"l2tpns on {self.node.name} to log {MASTER_LOG!r}", interval=0.2)

    def _log_since_start(self) -> str:
        """The log of the current run only: after Node.restart the container's log still holds the last run's.
        Docker's `since` has whole-second resolution, so lines are filtered on their own timestamps."""
        container = self.node.container
        container.reload()
        started = _instant(container.attrs["State"]["StartedAt"])
        raw = container.logs(stdout=True, stderr=True, timestamps=True, since=int(started.timestamp()))
        lines = []
        for line in raw.decode(errors="replace").splitlines():
            stamp, _, text = line.partition(" ")
            if _instant(stamp) >= started:
                lines.append(text)
        return "\n".join(lines)

    def inner_interface(self) -> str | None:
        # tun0 exists (with the LNS end's address) from the start, for every session at once; this session is up
        # once IPCP has opened and l2tpns has routed the LAC end's address into tun0 ("Route add" in its log).
        if self.side is None:
            return None
        routes = self.node.exec(["ip", "-4", "route", "show", "dev", TUN_DEVICE], timeout=5).output
        return TUN_DEVICE if re.search(rf"^{re.escape(self.side.remote_inner)}\s", routes, re.M) else None

    def version(self) -> str:
        # l2tpns has no --version option; the running daemon logs "L2TPNS version 2.4.1" once it has read its config
        match = re.search(r"L2TPNS version (\S+)", self.node.logs())
        if not match:
            raise HarnessError(f"{self.node.name}: no 'L2TPNS version' line in the daemon's log")
        return f"l2tpns {match.group(1)}"
