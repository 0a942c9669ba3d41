"""strongSwan as an IPsec initiator or responder: charon-systemd in the foreground, driven by swanctl.

On hosts whose kernel lacks ESP, ESP runs in user space (kernel-libipsec on /dev/net/tun), which always
UDP-encapsulates; on hosts with kernel ESP the kernel does it. See NOTES.md for the traps.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

from harness.errors import ConfigError
from harness.protocols.ipsec.keys import EspSaKeys, IkeSaKeys
from harness.protocols.ipsec.roles import ChildSa, IPsecEndpoint, Outcome
from harness.protocols.ipsec.scenario import EspProposal, IkeProposal, Scenario, Side, inner_address
from harness.waiting import wait_for

from . import keylog

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

# IANA transform names (the scenario's vocabulary) -> strongSwan proposal keywords.
KEYWORDS = {
    "ENCR_3DES": "3des", "ENCR_AES_CBC_128": "aes128", "ENCR_AES_CBC_192": "aes192", "ENCR_AES_CBC_256": "aes256",
    "ENCR_AES_GCM_16_128": "aes128gcm16", "ENCR_AES_GCM_16_256": "aes256gcm16",
    "ENCR_CHACHA20_POLY1305": "chacha20poly1305",
    "AUTH_HMAC_SHA1_96": "sha1", "AUTH_HMAC_SHA2_256_128": "sha256", "AUTH_HMAC_SHA2_384_192": "sha384",
    "AUTH_HMAC_SHA2_512_256": "sha512",
    "PRF_HMAC_SHA1": "prfsha1", "PRF_HMAC_SHA2_256": "prfsha256", "PRF_HMAC_SHA2_384": "prfsha384",
    "PRF_HMAC_SHA2_512": "prfsha512",
    "MODP_1024": "modp1024", "MODP_1536": "modp1536", "MODP_2048": "modp2048", "MODP_3072": "modp3072", "MODP_4096": "modp4096",
    "ECP_256": "ecp256", "ECP_384": "ecp384", "CURVE25519": "curve25519",
    "ESN": "esn", "NO_ESN": "noesn",
    "ML_KEM_512": "mlkem512", "ML_KEM_768": "mlkem768", "ML_KEM_1024": "mlkem1024", "NONE": "none",
}


def _keyword(name: str, field: str) -> str:
    try:
        return KEYWORDS[name]
    except KeyError:
        raise ConfigError("scenario", field, f"strongswan adapter has no keyword for {name}") from None


def ike_proposal(p: IkeProposal) -> str:
    """"aes128-sha256-prfsha256-modp2048", with "-ke1_mlkem768" per additional key exchange (strongSwan 6.0+)."""
    additional = [f"ke{n}_{_keyword(method, 'ike')}" for n, method in enumerate(p.additional, 1)]
    return "-".join([*(_keyword(n, "ike") for n in p.transforms), *additional])


def esp_proposal(p: EspProposal) -> str:
    """ENCR-INTEG-KE-ESN: a group in esp_proposals is PFS for every CREATE_CHILD_SA of the child (swanctl.conf)."""
    return "-".join(_keyword(n, "esp") for n in p.transforms)


class StrongSwan(IPsecEndpoint):
    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        self.childless = scenario.childless
        child_rekey_s = scenario.child_rekey_s if side.role in scenario.child_rekey_by else None
        timers = {"dpd_delay": scenario.dpd_delay_s, "ike_rekey_time": scenario.ike_rekey_s,
                  "child_rekey_time": child_rekey_s}
        variables = dict(
            {name: f"{seconds}s" for name, seconds in timers.items() if seconds is not None},
            role=side.role, libipsec=not self.host.has("kernel-esp"),
            local_addr=side.address, remote_addr=side.peer_address,
            # quoted: a DN's '=' and ',' must not end the value; %any: no IDr (any responder)
            local_id=f'"{side.identity}"', remote_id=f'"{side.peer_identity}"' if side.peer_identity else "%any",
            psk=side.psk,
            local_ts=side.subnet, remote_ts=side.peer_subnet, childless=scenario.childless,
            mode=scenario.mode_of(side.role),
            ike_proposals=[ike_proposal(p) for p in scenario.ike_of(side.role)],
            esp_proposals=[esp_proposal(p) for p in scenario.esp_of(side.role)])
        variables["dpd_action"] = scenario.dpd_action  # swanctl's words are the scenario's: clear, restart
        if scenario.retransmit_timeout_s is not None:
            # retransmit_base 1: every retransmission after the same timeout, no backoff
            variables.update(retransmit_timeout=f"{scenario.retransmit_timeout_s:g}", retransmit_base="1")
        if scenario.retransmit_tries is not None:
            variables["retransmit_tries"] = scenario.retransmit_tries
        if scenario.ike_rekey_s or scenario.child_rekey_s:
            variables["rand_time"] = "0s"  # rekey exactly when the case expects it
        if child_rekey_s:
            # The default hard lifetime (rekey time + 10%) is too close to the rekey for second-long timers:
            # the SAs expired and were deleted before the rekey ran, and new CHILD SAs were made instead.
            variables["child_life_time"] = f"{2 * child_rekey_s}s"
        variables["encap"] = scenario.encapsulation
        if scenario.nat_keepalive_s is not None:
            variables["keep_alive"] = f"{scenario.nat_keepalive_s}s"
        # RFC 7427 schemes: charon signs PKCS#1 v1.5 unless rsa_pss; signature_authentication = no drops RFC 7427
        # (no SIGNATURE_HASH_ALGORITHMS notify, AUTH method 1)
        variables["rsa_scheme"] = scenario.rsa_scheme_of(side.role)
        if scenario.ppk_id_of(side.role) is not None:
            variables.update(ppk_id=scenario.ppk_id_of(side.role), ppk_required=scenario.ppk_required_of(side.role),
                             ppk=scenario.ppk)
        if scenario.additional_subnets:
            peer = "responder" if side.role == "initiator" else "initiator"
            variables["additional_ts"] = (scenario.additional_subnets[side.role], scenario.additional_subnets[peer])
        variables["auth"] = scenario.auth
        variables.update(ike_version=scenario.ike_version, aggressive=scenario.aggressive)
        if scenario.remote_access:
            # the initiator names itself by the group (ID_KEY_ID), as Cisco-style clients do; its inner address is
            # the first host of its subnet, the pool's only one
            pool = f"{inner_address(scenario.own_subnet('initiator'))}/32"
            variables["remote_access"] = dict(user=scenario.xauth_user, password=scenario.xauth_password, pool=pool)
            group = f'"keyid:{scenario.group}"'
            if side.role == "initiator":
                variables["local_id"] = group
            else:
                variables["remote_id"] = group
        variables["busy"] = scenario.responder_busy and side.role == "responder"
        files = {"/etc/strongswan.conf": TEMPLATES.get_template("strongswan.conf.j2").render(variables),
                 "/etc/swanctl/swanctl.conf": TEMPLATES.get_template("swanctl.conf.j2").render(variables)}
        if side.credentials:
            files.update({"/etc/swanctl/x509/local.pem": side.credentials.cert_pem.decode(),
                          "/etc/swanctl/private/local.key": side.credentials.key_pem.decode(),
                          "/etc/swanctl/x509ca/ca.pem": side.credentials.ca_pem.decode()})
        return files

    def _swanctl(self, *args: str, timeout: float = 10, check: bool = False):
        return self.node.exec(["swanctl", *args], timeout=timeout, check=check)

    def wait_ready(self, timeout: float) -> None:
        def answers() -> bool:
            self.node.ensure_running()  # a daemon that died is reported at once, not after the timeout
            return self._swanctl("--stats", timeout=5).ok
        wait_for(answers, timeout=timeout, what=f"charon on {self.node.name} to answer swanctl --stats")

    def load(self) -> None:
        self._swanctl("--load-all", "--noprompt", check=True)

    def initiate(self, timeout: float) -> Outcome:
        # A childless scenario initiates the IKE SA alone (`childless = force` keeps SA/TS out of IKE_AUTH);
        # otherwise by child, so IKE_AUTH carries the first CHILD SA.
        target = ["--ike", "lab"] if self.childless else ["--child", "net"]
        result = self._swanctl("--initiate", *target, "--timeout", f"{int(timeout)}", timeout=timeout + 5)
        lines = result.output.strip().splitlines()
        return Outcome(established=result.ok,
                       auth_failed="AUTHENTICATION_FAILED" in result.output,
                       detail=lines[-1] if lines else f"swanctl --initiate exited {result.exit_code}")

    def child_sas(self) -> list[ChildSa]:
        """Parse `swanctl --list-sas`: a CHILD_SA block starts '<name>: #n, reqid n, INSTALLED, <mode>'."""
        text = self._swanctl("--list-sas", check=True).output
        sas = []
        for block in re.split(r"\n(?=\s+\S+: #\d+, reqid)", text)[1:]:
            head = re.match(r"\s+(\S+): #\d+, reqid \d+, (\S+), (\S+),", block)
            spi_in, spi_out = re.search(r"\bin\s+([0-9a-f]{8})", block), re.search(r"\bout\s+([0-9a-f]{8})", block)
            if head and head.group(2) == "INSTALLED" and spi_in and spi_out:
                sas.append(ChildSa(head.group(1), int(spi_in.group(1), 16), int(spi_out.group(1), 16),
                                   udp_encapsulated="in-UDP" in head.group(3)))
        return sas

    def terminate(self, timeout: float) -> None:
        self._swanctl("--terminate", "--ike", "lab", "--timeout", f"{int(timeout)}", timeout=timeout + 5)

    def close_child(self, timeout: float) -> None:
        self._swanctl("--terminate", "--child", "net", "--timeout", f"{int(timeout)}", timeout=timeout + 5)

    def rekey_child(self) -> None:
        # vici's rekey only queues the job: swanctl returns before the CREATE_CHILD_SA goes out
        self._swanctl("--rekey", "--child", "net", check=True)

    def initiate_additional(self, timeout: float) -> Outcome:
        result = self._swanctl("--initiate", "--child", "extra", "--timeout", f"{int(timeout)}", timeout=timeout + 5)
        lines = result.output.strip().splitlines()
        return Outcome(established=result.ok, auth_failed=False,
                       detail=lines[-1] if lines else f"swanctl --initiate exited {result.exit_code}")

    def forget(self, timeout: float) -> None:
        # --force: the IKE SA is destroyed if the peer has not answered its Delete within --timeout (a second: no
        # more, the Delete is meant to be lost)
        self._swanctl("--terminate", "--ike", "lab", "--force", "--timeout", "1", timeout=timeout + 5)

    def version(self) -> str:
        return self._swanctl("--version", "--daemon").output.strip()

    def ike_keys(self) -> list[IkeSaKeys]:
        """The IKE SA keys charon dumped to its log (filelog ike = 4)."""
        return keylog.ike_keys(self.node.logs())

    def esp_keys(self) -> list[EspSaKeys]:
        """The ESP SA keys charon dumped to its log (filelog chd = 4)."""
        return keylog.esp_keys(self.node.logs())
