"""xl2tpd as an L2TPv2 LAC or LNS, starting /usr/sbin/pppd for each session.

Where the host has the kernel's PPP ("ppp": xl2tpd@kernel, a microVM here), that is Debian's pppd, and xl2tpd
uses the kernel's L2TP too ("Using l2tp kernel support."): it hands pppd a PPPoL2TP socket (`plugin pppol2tp.so`),
and the session's data messages are the kernel's, not xl2tpd's. Where the host has no kernel L2TP, xl2tpd runs the
tunnel and sessions in user space and passes the async HDLC frames of a pty to pppd. Where it has no /dev/ppp,
pppd cannot run ("Please load the ppp_generic kernel module"), so the harness's user-space PPP
endpoint (harness/protocols/l2tp/ppp.py) is put at /usr/sbin/pppd: it reads what xl2tpd does not pass from
/etc/l2tp-ppp.json and carries the session's IPv4 on a TUN device named ppp0, as pppd would.

Under an IKEv1 daemon (xl2tpd@strongswan, xl2tpd@libreswan: RFC 3193, `Side.protection`) the adapter renders the
one connection both daemons know, in each one's syntax; the image holds one of them and run-xl2tpd starts it, its
trap policies in place before xl2tpd starts. The LAC's first SCCRQ then makes the kernel ask the daemon for the SA
(an acquire), and xl2tpd's retransmission goes in ESP. See NOTES.md.
"""
from __future__ import annotations

import json
import re

from harness.errors import ConfigError, HarnessError
from harness.protocols.l2tp.roles import L2tpEndpoint
from harness.protocols.l2tp.scenario import L2TP_PORT, Protection, Scenario, Side
from harness.shipping import harness_files
from harness.waiting import wait_for

PPP_PROGRAM = "harness.protocols.l2tp.ppp"  # the harness's user-space PPP endpoint, shipped at /usr/sbin/pppd
CONTROL_PIPE = "/var/run/xl2tpd/l2tp-control"
CALL = "interop"  # the LAC section's name: what xl2tpd-control connect-lac / disconnect-lac name
INTERFACE = "ppp0"
# The IKEv1 daemons' names for the transforms a Protection may ask for (strongSwan's and Libreswan's agree on these).
IPSEC_NAMES = {"ENCR_AES_CBC_128": "aes128", "ENCR_AES_CBC_256": "aes256", "ENCR_3DES": "3des",
               "AUTH_HMAC_SHA1_96": "sha1", "AUTH_HMAC_SHA2_256_128": "sha256", "PRF_HMAC_SHA1": "sha1",
               "PRF_HMAC_SHA2_256": "sha256", "MODP_1024": "modp1024", "MODP_2048": "modp2048"}
IPSEC_CONNECTION = "l2tp"
MTU = 1400  # the PPP MRU both ways: room for IP+UDP+L2TP+PPP headers in one 1500-byte underlay packet
PPP_OPTIONS = "/etc/ppp/options.xl2tpd"
PPP_LOG = "/var/log/l2tp-ppp.log"


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


class Xl2tpd(L2tpEndpoint):
    side: Side | None = None

    @property
    def _kernel_ppp(self) -> bool:
        return self.host.has("ppp")

    def render(self, scenario: Scenario, side: Side) -> dict[str, str | bytes]:
        self.side = side
        files = {
            "/etc/xl2tpd/xl2tpd.conf": self._xl2tpd_conf(scenario, side),
            # "<them> <me> <secret>"; xl2tpd reads it whenever a tunnel is challenged (`challenge = yes`) or hides
            # AVPs, the two uses of the tunnel secret.
            "/etc/xl2tpd/l2tp-secrets": f"* * {side.secret}\n" if side.secret else "",
        }
        if self._kernel_ppp:
            files.update(self._pppd_files(scenario, side))
        else:
            files.update(self._user_space_ppp_files(scenario, side))
        if side.protection is not None:
            files.update(self._ipsec_files(side, side.protection))
        return files

    def _ipsec_files(self, side: Side, protection: Protection) -> dict[str, str]:
        """The RFC 3193 connection for both IKE daemons an image may hold (run-xl2tpd starts the one it has): IKEv1
        Main Mode PSK, a transport SA for UDP port 1701 between the two hosts (xl2tpd sends from its listening port
        as LAC too), on trap policies: the SA is negotiated when L2TP first needs it, and no L2TP leaves in the
        clear before."""
        def name(transform: str) -> str:
            if transform not in IPSEC_NAMES:
                raise ConfigError("scenario", "protection", f"xl2tpd's IKE daemons are given only "
                                                            f"{', '.join(IPSEC_NAMES)}, not {transform}")
            return IPSEC_NAMES[transform]
        ike = "-".join(name(t) for t in (protection.ike.encryption, protection.ike.prf, protection.ike.group))
        esp = "-".join(name(t) for t in protection.esp.transforms)
        port = protection.port
        swanctl = f"""connections {{
    {IPSEC_CONNECTION} {{
        version = 1
        local_addrs = {side.address}
        remote_addrs = {side.peer_address}
        proposals = {ike}
        local {{
            auth = psk
            id = {side.address}
        }}
        remote {{
            auth = psk
            id = {side.peer_address}
        }}
        children {{
            {IPSEC_CONNECTION} {{
                mode = transport
                local_ts = dynamic[17/{port}]
                remote_ts = dynamic[17/{port}]
                esp_proposals = {esp}
                start_action = trap
            }}
        }}
    }}
}}
secrets {{
    ike-{IPSEC_CONNECTION} {{
        id = {side.peer_address}
        secret = "{protection.psk}"
    }}
}}
"""
        strongswan = """charon-systemd {
    journal {
        default = -1
    }
    filelog {
        stderr {
            time_format = %H:%M:%S
            ike_name = yes
            default = 1
            ike = 2
            knl = 2
        }
    }
}
"""
        ipsec_conf = f"""config setup
    audit-log=no
    # Debian's 4.10 drops every IKEv1 packet unless told
    ikev1-policy=accept

conn {IPSEC_CONNECTION}
    ikev2=no
    authby=secret
    type=transport
    left={side.address}
    right={side.peer_address}
    leftprotoport=17/{port}
    rightprotoport=17/{port}
    ike={ike}
    esp={esp}
    pfs=no
    auto=route
"""
        return {
            "/etc/swanctl/conf.d/l2tp.conf": swanctl,
            "/etc/strongswan.d/l2tp-ipsec.conf": strongswan,
            "/etc/ipsec.conf": ipsec_conf,
            "/etc/ipsec.secrets": f'{side.address} {side.peer_address} : PSK "{protection.psk}"\n',
        }

    def _xl2tpd_conf(self, scenario: Scenario, side: Side) -> str:
        tunnel_auth = side.secret is not None
        lines = [
            "[global]",
            f"port = {L2TP_PORT}",
            f"listen-addr = {side.address}",
            "auth file = /etc/xl2tpd/l2tp-secrets",
            "access control = no",
            "debug tunnel = yes",
            "debug state = yes",
            "debug avp = yes",
            "",
        ]
        # Not rendered: scenario.retransmit_s / max_retransmissions (RFC 2661 5.8). xl2tpd.conf has no setting for
        # them, so xl2tpd does not declare "retransmit_timers" and no wait counts on them.
        common = [
            f"hostname = {side.hostname}",
            # RFC 2661 5.1.1 tunnel authentication: Challenge / Challenge Response AVPs with the l2tp-secrets secret.
            f"challenge = {yes(tunnel_auth)}",
            f"hidden bit = {yes(scenario.hide_avps and tunnel_auth)}",
            "length bit = yes",
            f"pppoptfile = {PPP_OPTIONS}",
            "ppp debug = yes",
        ]
        if side.role == "lns":
            auth = scenario.ppp_auth
            lines += [
                "[lns default]",
                # pppd gets "<local ip>:<ip range>" and assigns the range's one address to the LAC's end (IPCP).
                f"ip range = {side.remote_inner}-{side.remote_inner}",
                f"local ip = {side.local_inner}",
                f"require authentication = {yes(auth != 'none')}",
                f"require pap = {yes(auth == 'pap')}" if auth != "chap" else "refuse pap = yes",
                f"require chap = {yes(auth == 'chap')}" if auth != "pap" else "refuse chap = yes",
                *common,
            ]
        else:
            lines += [
                f"[lac {CALL}]",
                f"lns = {side.peer_address}",
                # Placed by hand (connect()), and never again: xl2tpd's redial after a failed call can wedge the
                # tunnel ("Received out of order control packet"; FIELD-NOTES).
                "autodial = no",
                "redial = no",
                "require authentication = no",
                f"name = {scenario.username}",
                *common,
            ]
        return "\n".join(lines) + "\n"

    def _user_space_ppp_files(self, scenario: Scenario, side: Side) -> dict[str, str]:
        lns = side.role == "lns"
        config = {
            "interface": INTERFACE,
            # The LNS knows both ends; the LAC asks for its address (0.0.0.0) and takes the LNS's word for it.
            "local": side.local_inner if lns else None,
            "remote": side.remote_inner if lns else None,
            "auth": scenario.ppp_auth if lns else "none",
            "username": scenario.username,
            "password": scenario.password,
            "name": side.hostname,
            "mru": MTU,
            # /proc/1/fd/2 is xl2tpd's stderr (PID 1): the endpoint's log lands in `docker logs` next to xl2tpd's.
            "log": [PPP_LOG, "/proc/1/fd/2"],
        }
        return {
            "/etc/l2tp-ppp.json": json.dumps(config, indent=2) + "\n",
            # The node's run-xl2tpd makes it executable: the harness copies files in with mode 0644.
            **harness_files(PPP_PROGRAM, at="/usr/sbin/pppd"),
            PPP_OPTIONS: "# read by pppd only; the user-space endpoint reads /etc/l2tp-ppp.json\n",
        }

    def _pppd_files(self, scenario: Scenario, side: Side) -> dict[str, str]:
        # xl2tpd passes require-/refuse- options and "<local>:<remote>" itself.
        options = ["noccp", "nodefaultroute", "noipv6", f"mtu {MTU}", f"mru {MTU}", "lcp-echo-interval 0",
                   f"ifname {INTERFACE}",
                   # pppd logs to syslog (none in a node) and to fd 1, which is the pty or closed under xl2tpd;
                   # fd 2 is xl2tpd's stderr, the node's log, where LCP, auth and IPCP then show next to xl2tpd's.
                   "logfd 2"]
        if side.role == "lac":
            # noipdefault: ask the LNS for an address (0.0.0.0), as the RFC 1332 client would; without it pppd
            # first offers the address its host name resolves to, the node's underlay address, and takes the Nak.
            options += [f"user {scenario.username}", "noipdefault", "ipcp-accept-local", "ipcp-accept-remote",
                        "noauth"]
        secret = f'"{scenario.username}" * "{scenario.password}" *\n'
        return {PPP_OPTIONS: "\n".join(options) + "\n",
                "/etc/ppp/pap-secrets": secret, "/etc/ppp/chap-secrets": secret}

    def wait_ready(self, timeout: float) -> None:
        def listening() -> bool:
            self.node.ensure_running()
            return self.node.exec(["test", "-p", CONTROL_PIPE], timeout=5).ok
        wait_for(listening, timeout=timeout, interval=0.05,
                 what=f"xl2tpd on {self.node.name} to open its control pipe {CONTROL_PIPE}")
        if self.side is not None and self.side.protection is not None:
            # run-xl2tpd starts xl2tpd once the IKE daemon has put its policies in the kernel; say so if it has not
            policies = self.node.exec(["ip", "xfrm", "policy"], timeout=5)
            if f"port {self.side.protection.port}" not in policies.output:
                raise HarnessError(f"{self.node.name}: xl2tpd runs but no IPsec policy for UDP "
                                   f"{self.side.protection.port} is in the kernel (ip xfrm policy: "
                                   f"{policies.output.strip() or 'none'})")

    def _control(self, command: str, timeout: float) -> None:
        # xl2tpd-control writes the command to the control pipe and waits for xl2tpd's answer on its own result
        # pipe ("00 OK" or an error); `timeout` in exec bounds both.
        self.node.exec(["xl2tpd-control", "-c", CONTROL_PIPE, command, CALL], timeout=timeout,
                       what=f"xl2tpd-control {command} {CALL}", check=True)

    def connect(self, timeout: float) -> None:
        if self.side is None or self.side.role != "lac":
            raise NotImplementedError("xl2tpd places calls only as a LAC")
        self._control("connect-lac", timeout)

    def disconnect(self, timeout: float) -> None:
        if self.side is None or self.side.role != "lac":
            raise NotImplementedError("xl2tpd clears calls only as a LAC")
        self._control("disconnect-lac", timeout)

    def inner_interface(self) -> str | None:
        return self._holding(INTERFACE, self.side.local_inner if self.side else None)

    def version(self) -> str:
        # xl2tpd has no control command for its version: the binary the node runs says it
        # ("xl2tpd version:  xl2tpd-1.3.18").
        result = self.node.exec(["xl2tpd", "-v"], timeout=10)
        found = re.search(r"xl2tpd-(\S+)", result.output)
        if not found:
            raise HarnessError(f"{self.node.name}: xl2tpd -v said {result.output.strip()!r}")
        ike = self.node.exec(["sh", "-c", "swanctl --version 2>/dev/null || ipsec --version 2>/dev/null"], timeout=10)
        daemon = re.search(r"(strongSwan|Libreswan)\D*(\d[\w.]*)", ike.output, re.I)
        return f"xl2tpd {found[1]}" + (f" under {daemon[1]} {daemon[2]}" if daemon else "")
