"""Libreswan as an IPsec initiator or responder: pluto in the foreground, driven by `ipsec auto` / `ipsec whack`.

Libreswan has no user-space ESP: its CHILD SAs live in the kernel's XFRM, so on a host whose kernel lacks ESP
the IKE SA comes up but installing the CHILD SA fails (vendor.toml declares that). See NOTES.md for the traps.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import NoEncryption, load_pem_private_key, pkcs12

from harness.errors import ConfigError, HarnessError, LabTimeout
from harness.protocols.ipsec.pki import Credentials
from harness.protocols.ipsec.roles import ChildSa, IPsecEndpoint, Outcome
from harness.protocols.ipsec.scenario import (ESN_TRANSFORMS, EspProposal, IkeProposal, Scenario, Side, inner_address,
                                              is_aead)
from harness.waiting import wait_for

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
CONN = "lab"
EXTRA = "lab-extra"  # the connection of the scenario's additional CHILD SA (also=lab)

# IANA transform names (the scenario's vocabulary) -> Libreswan 4.10 algorithm keywords (`ipsec algparse`).
# Integrity keeps its truncation suffix (sha2_256_128): a bare "sha2_256" would be read as a PRF.
KEYWORDS = {
    "ENCR_3DES": "3des", "ENCR_AES_CBC_128": "aes128", "ENCR_AES_CBC_192": "aes192", "ENCR_AES_CBC_256": "aes256",
    "ENCR_AES_GCM_16_128": "aes_gcm128", "ENCR_AES_GCM_16_256": "aes_gcm256",
    "ENCR_CHACHA20_POLY1305": "chacha20_poly1305",
    "AUTH_HMAC_SHA1_96": "sha1_96", "AUTH_HMAC_SHA2_256_128": "sha2_256_128",
    "AUTH_HMAC_SHA2_384_192": "sha2_384_192", "AUTH_HMAC_SHA2_512_256": "sha2_512_256",
    "PRF_HMAC_SHA1": "sha1", "PRF_HMAC_SHA2_256": "sha2_256", "PRF_HMAC_SHA2_384": "sha2_384",
    "PRF_HMAC_SHA2_512": "sha2_512",
    "MODP_1024": "modp1024", "MODP_1536": "modp1536", "MODP_2048": "modp2048", "MODP_3072": "modp3072", "MODP_4096": "modp4096",
    "ECP_256": "dh19", "ECP_384": "dh20", "CURVE25519": "dh31",
}

# Scenario key types -> Libreswan 4.10 `authby=`. rsasig is RSA in RFC 7427 Digital Signatures: RSASSA-PSS when
# pluto initiates, the initiator's own scheme (e.g. PKCS#1 v1.5) when it responds; see NOTES.md.
AUTHBY = {"psk": "secret", "rsa": "rsasig", "rsa4096": "rsasig", "ecdsa": "ecdsa"}
# The scenario's RSA schemes -> `authby=` (4.10's readwriteconf: rsa-sha2 is RSASIG, RFC 7427 with RSASSA-PSS;
# rsa-sha1 is RSASIG_v1_5, RFC 7296's method 1). Nothing asks pluto to sign PKCS#1 v1.5 inside RFC 7427.
RSA_AUTHBY = {"pss": "rsa-sha2", "legacy": "rsa-sha1"}
# Where run-pluto finds the certificate files, and the NSS nickname its PKCS#12 import gives our certificate.
LAB_DIR = "/etc/ipsec.d/lab"
CERT_NICKNAME = "local"


def _keyword(name: str, field: str) -> str:
    try:
        return KEYWORDS[name]
    except KeyError:
        raise ConfigError("scenario", field, f"libreswan adapter has no keyword for {name}") from None


def ike_proposal(p: IkeProposal) -> str:
    """ENCR-INTEG-PRF;DH, or ENCR-PRF;DH for AEAD ciphers (Libreswan then proposes no INTEG transform)."""
    if p.additional:  # its vendor.toml declares no mlkem: a case asking for it skips before rendering
        raise ConfigError("scenario", "ike", f"libreswan adapter has no additional key exchanges "
                                             f"({', '.join(p.additional)}): Libreswan 4.10 and 5.2 know none")
    *algorithms, group = p.transforms
    return "-".join(_keyword(n, "ike") for n in algorithms) + ";" + _keyword(group, "ike")


def ikev1_proposal(p: IkeProposal) -> str:
    """IKEv1's ike=: ENCR-HASH;DH, the hash being the PRF's (phase 1 has no separate integrity algorithm)."""
    return f"{_keyword(p.encryption, 'ike')}-{_keyword(p.prf, 'ike')};{_keyword(p.group, 'ike')}"


def ikev1_esp_proposal(p: EspProposal) -> str:
    """IKEv1's esp= (phase2alg): ENCR-HASH, the HMAC named by its hash ("aes256-sha1"), ;DH with PFS."""
    integrity = () if is_aead(p.encryption) or p.integrity is None else (IKEV1_INTEGRITY[p.integrity],)
    text = "-".join([_keyword(p.encryption, "esp"), *integrity])
    return text if p.group is None else f"{text};{_keyword(p.group, 'esp')}"


# IKEv1 names an ESP HMAC by its hash (RFC 2407 4.5's Authentication Algorithm), where IKEv2 keeps the truncation.
IKEV1_INTEGRITY = {"AUTH_HMAC_SHA1_96": "sha1", "AUTH_HMAC_SHA2_256_128": "sha2_256",
                   "AUTH_HMAC_SHA2_384_192": "sha2_384", "AUTH_HMAC_SHA2_512_256": "sha2_512"}


def esp_proposal(p: EspProposal) -> str:
    """ENCR-INTEG;DH, ENCR;DH for AEAD (`ipsec algparse -pfs`: "aes_gcm128-modp2048" reads the group as INTEG).
    ESN is not part of a Libreswan proposal: see esn_policy."""
    text = "-".join(_keyword(n, "esp") for n in p.transforms if n != p.group and n not in ESN_TRANSFORMS)
    return text if p.group is None else f"{text};{_keyword(p.group, 'esp')}"


# The scenario's ESN transforms -> Libreswan 4.10 `esn=` (one per conn, not per proposal).
ESN_POLICY = {("ESN",): "yes", ("NO_ESN",): "no", ("ESN", "NO_ESN"): "either", ("NO_ESN", "ESN"): "either"}


def esn_policy(proposals: tuple[EspProposal, ...]) -> str | None:
    """`esn=` for these proposals, None to leave pluto's default; Libreswan cannot vary it between proposals."""
    offered = {p.esn for p in proposals}
    if len(offered) > 1:
        raise ConfigError("scenario", "esp", "libreswan has one esn= per connection: the ESP proposals must offer "
                                             f"the same ESN transforms, not {sorted(offered)}")
    (esn,) = offered
    return ESN_POLICY[esn] if esn else None


def pfs_group(proposals: tuple[EspProposal, ...]) -> str | None:
    """The one KE group of the ESP proposals (None: no PFS). pluto refuses several: "more than one IKEv2 ESP DH
    algorithm ... requires unimplemented CHILD_SA INVALID_KE" (4.10's algparse), and a proposal without a group
    among ones with a group is not what pfs= can say."""
    groups = {p.group for p in proposals}
    if len(groups) > 1:
        raise ConfigError("scenario", "esp", "libreswan 4.10 takes one ESP key exchange group (no CHILD SA "
                                             f"INVALID_KE_PAYLOAD as initiator), not {sorted(map(str, groups))}")
    return groups.pop()


def pluto_id(identity: str | None, id_type: str) -> str:
    """An identity as leftid=/rightid= and ipsec.secrets read it: '@' makes an FQDN (without it pluto would
    resolve the name), a bare address is ID_IPV4_ADDR, user@domain ID_RFC822_ADDR, a quoted DN ID_DER_ASN1_DN."""
    if identity is None:
        return "%any"
    return {"fqdn": f"@{identity}", "dn": f'"{identity}"'}.get(id_type, identity)


def credential_files(credentials: Credentials) -> dict[str, str]:
    """Key and certificate as a PKCS#12 (friendly name = NSS nickname, no password: it lives only in the lab),
    base64 because the harness copies text; run-pluto imports it and the CA into NSS before pluto starts."""
    key = load_pem_private_key(credentials.key_pem, password=None)
    cert = x509.load_pem_x509_certificate(credentials.cert_pem)
    bundle = pkcs12.serialize_key_and_certificates(CERT_NICKNAME.encode(), key, cert, None, NoEncryption())
    return {f"{LAB_DIR}/local.p12.base64": base64.encodebytes(bundle).decode(),
            f"{LAB_DIR}/ca.pem": credentials.ca_pem.decode()}


# `ipsec whack --showstates`, one SA per "#n:" line; a CHILD SA has a second line with its SPIs:
#   000 #2: "lab":4500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); ...
#   000 #2: "lab" esp.248d1071@198.18.0.3 esp.4e68b7a9@198.18.0.2 Traffic: ESPin=0B ESPout=0B ESPmax=2^63B
# The port is the peer's IKE port; the SPI at the peer's address is the outbound SA, ours the inbound one.
# An instance of a connection (narrowing=yes, or a NAT'd peer) is named with its number and the peer's address:
#   000 #2: "lab"[1] 198.18.0.2:4500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); ...
# Libreswan 5 prints the states without the "STATE_V2_" prefix (and the lines without "000 "):
#   #2: "lab":4500 ESTABLISHED_CHILD_SA (established Child SA); ...
STATES = {"ike": "ESTABLISHED_IKE_SA", "child": "ESTABLISHED_CHILD_SA"}  # with or without STATE_V2_ before them
INSTANCE = r'(?:\[\d+\] [^\s:]+)?'
# IKEv1 (4.10) names the states of its exchanges, and says what they hold in brackets:
#   000 #1: "lab":500 STATE_MAIN_I4 (ISAKMP SA established); ...
#   000 #2: "lab"[1] 198.18.2.2:4500 STATE_QUICK_R2 (IPsec SA established); ...
IKEV1_STATES = {"ike": re.compile(r"\((?:ISAKMP|IKE) SA established\)"), "child": re.compile(r"\(IPsec SA established\)")}
CHILD_STATE = re.compile(r'#(\d+): "([^"]+)"' + INSTANCE +
                         r'\S*:(\d+) (?:(?:STATE_V2_)?ESTABLISHED_CHILD_SA|\S+ \(IPsec SA established\))')
SPIS = re.compile(r'#(\d+): "[^"]+"' + INSTANCE + r'\S* esp\.([0-9a-f]+)@(\S+) esp\.([0-9a-f]+)@(\S+)')


class Libreswan(IPsecEndpoint):
    childless = False  # set by render(): initiate() needs it
    xauth: tuple[str, str] | None = None  # set by render() for a remote-access client: its XAUTH user and password
    additional = False  # set by render(): the scenario has an additional CHILD SA (conn EXTRA)

    def render(self, scenario: Scenario, side: Side) -> dict[str, str]:
        # What this adapter does not implement (vendor.toml does not declare it) must not pass silently.
        if scenario.auth not in AUTHBY:
            raise ConfigError("scenario", "auth", f"libreswan adapter implements {', '.join(AUTHBY)}, "
                                                  f"not {scenario.auth}")
        if scenario.auth != "psk" and side.credentials is None:
            raise ConfigError("scenario", "auth", f"{scenario.auth} needs the side's credentials")
        scheme = scenario.rsa_scheme_of(side.role)
        if scheme is not None and scenario.auth.startswith("rsa"):
            if scheme not in RSA_AUTHBY:
                raise ConfigError("scenario", "rsa_scheme", f"libreswan 4.10 has no authby= for {scheme}")
        self.childless = scenario.childless
        variables = dict(
            role=side.role, local_addr=side.address, remote_addr=side.peer_address,
            local_id=pluto_id(side.identity, side.id_type), remote_id=pluto_id(side.peer_identity, side.id_type),
            psk=side.psk,
            auth=scenario.auth, authby=RSA_AUTHBY[scheme] if scheme and scenario.auth.startswith("rsa")
            else AUTHBY[scenario.auth], cert_nickname=CERT_NICKNAME,
            local_subnet=side.subnet, remote_subnet=side.peer_subnet, source_ip=inner_address(side.subnet),
            ike_proposals=[ike_proposal(p) for p in scenario.ike_of(side.role)],
            esp_proposals=[esp_proposal(p) for p in scenario.esp_of(side.role)],
            ppk_id=scenario.ppk_id_of(side.role), ppk_required=scenario.ppk_required_of(side.role), ppk=scenario.ppk,
            mode=scenario.mode_of(side.role), encapsulation=scenario.encapsulation,
            # Only where the two sides' subnets differ: with narrowing=yes pluto makes every peer's connection an
            # instance ("lab"[1]) even when the selectors match exactly.
            narrowing=scenario.responder_subnets is not None,
            keep_alive=scenario.nat_keepalive_s,
            pfs=pfs_group(scenario.esp_of(side.role)) is not None, esn=esn_policy(scenario.esp_of(side.role)),
            busy=scenario.responder_busy and side.role == "responder",
            ike_version=scenario.ike_version, aggressive=scenario.aggressive, remote_access=False,
            remote_access_client=False, additional=None, additional_conn=EXTRA)
        if scenario.additional_subnets:
            peer = "responder" if side.role == "initiator" else "initiator"
            extra = (scenario.additional_subnets[side.role], scenario.additional_subnets[peer])
            variables.update(additional=extra, additional_source=inner_address(extra[0]))
        self.additional = bool(scenario.additional_subnets)
        if scenario.ike_version == 1:
            variables.update(ike_proposals=[ikev1_proposal(p) for p in scenario.ike_of(side.role)],
                             esp_proposals=[ikev1_esp_proposal(p) for p in scenario.esp_of(side.role)])
        self.xauth = None
        if scenario.remote_access:
            # the client names itself by its group: ID_KEY_ID, which pluto writes '@#' and the hex of the bytes
            group_id = f"@#{scenario.group.encode().hex()}"
            if side.role == "responder":
                variables.update(remote_access=True, remote_id=group_id,
                                 pool=inner_address(scenario.own_subnet("initiator")))
            else:  # the client: its address comes from Mode Config, its XAUTH password from whack (initiate)
                variables.update(remote_access_client=True, local_id=group_id, xauth_user=scenario.xauth_user)
                self.xauth = (scenario.xauth_user, scenario.xauth_password)
        if scenario.retransmit_timeout_s is not None:
            variables["retransmit_interval_ms"] = round(1000 * scenario.retransmit_timeout_s)
            # The template's 5 s deadline is ten of pluto's default 0.5-s intervals (four retransmissions): keep that
            # many for a longer interval (a scenario stretched for a microVM), or pluto gives up before its first.
            variables["retransmit_timeout"] = f"{max(5000, 10 * variables['retransmit_interval_ms'])}ms"
        if scenario.retransmit_tries is not None:
            # pluto has no count, only a deadline, checked at each retransmission; they go out 1, 2, 4, ...
            # intervals after the first sending (its log: "will wait 0.5 seconds", then 0.5, 1, 2 ...). So the
            # wait after the last of `tries` ends 2^tries intervals after it; a deadline between that of the one
            # before and this one gives up right there, after `tries` retransmissions: three quarters of it.
            # In milliseconds: 4.10 reads "1.5s" as no value at all (its default, 60 s), "1500ms" as meant.
            interval = scenario.retransmit_timeout_s if scenario.retransmit_timeout_s is not None else 0.5
            deadline_ms = round(1000 * 0.75 * interval * 2 ** scenario.retransmit_tries)
            variables["retransmit_timeout"] = f"{deadline_ms}ms"
        child_rekey = scenario.child_rekey_s if side.role in scenario.child_rekey_by else None
        if scenario.ike_rekey_s is not None or child_rekey is not None:
            # One rekeymargin serves both SAs: each lifetime is its rekey time plus that margin. An SA the case
            # gives no timer gets a rekey time far beyond it (pluto has no "never" beside rekey=no, which is all).
            far = 10 * max(t for t in (scenario.ike_rekey_s, child_rekey) if t is not None) + 3600
            ike, child = scenario.ike_rekey_s or far, child_rekey or far
            margin = max(ike, child)
            variables.update(ike_rekey=ike, child_rekey=child, rekey_margin=margin, ike_lifetime=ike + margin,
                             sa_lifetime=child + margin)
        variables["dpd_action"] = scenario.dpd_action  # ipsec.conf's words are the scenario's: clear, restart
        if scenario.dpd_delay_s is not None:
            # the peer counts as dead after a few unanswered checks, as with strongSwan's retransmits
            variables.update(dpd_delay=f"{scenario.dpd_delay_s}s", dpd_timeout=f"{5 * scenario.dpd_delay_s}s")
        files = {"/etc/ipsec.conf": TEMPLATES.get_template("ipsec.conf.j2").render(variables),
                 "/etc/ipsec.secrets": TEMPLATES.get_template("ipsec.secrets.j2").render(variables)}
        if scenario.auth != "psk":
            files.update(credential_files(side.credentials))
        return files

    def _ipsec(self, *args: str, timeout: float = 10, check: bool = False, what: str | None = None):
        return self.node.exec(["ipsec", *args], timeout=timeout, check=check, what=what)

    def wait_ready(self, timeout: float) -> None:
        # whack requests are served by pluto's event loop, which runs only after start-up (NSS, interfaces,
        # secrets, the conns of ipsec.conf) is done: an answer means pluto is ready for IKE.
        def answers() -> bool:
            self.node.ensure_running()  # a pluto that died (e.g. on a config error) is reported at once
            return self._ipsec("whack", "--showstates", timeout=5).ok
        wait_for(answers, timeout=timeout, what=f"pluto on {self.node.name} to answer ipsec whack")

    def load(self) -> None:
        # pluto already added `lab` (auto=add) when it read ipsec.conf at start-up; adding it again replaces
        # it with the same rendered file and fails loudly if the file does not parse.
        for conn in (CONN, EXTRA) if self.additional else (CONN,):
            result = self._ipsec("auto", "--add", conn)
            if not result.ok:
                # whack may say nothing (exit 36 and no output when leftcert= is not in NSS): pluto's log says why.
                why = [line for line in self.node.logs().splitlines() if f'"{conn}": failed' in line]
                raise HarnessError(f"{self.node.name}: ipsec auto --add {conn} exited {result.exit_code}: "
                                   f"{(why[-1:] or [result.output.strip()])[0]}")

    def add_inner_address(self, address: str) -> None:
        if self.xauth is None:  # a remote-access client holds the address Mode Config gives (pluto's updown)
            super().add_inner_address(address)

    def initiate(self, timeout: float) -> Outcome:
        # A remote-access client's XAUTH answer: whack passes it to pluto (which would otherwise ask whack for it).
        command = ("auto", "--up", CONN) if self.xauth is None else (
            "whack", "--name", CONN, "--initiate", "--xauthname", self.xauth[0], "--xauthpass", self.xauth[1])
        try:
            # whack stays attached until the exchange ends; its exit status is 0 even when the CHILD SA was
            # refused or failed to install, so the verdict comes from the output and the state table.
            # named without its arguments: the XAUTH password must not reach a timeout's message
            result = self._ipsec(*command, timeout=timeout, what=f"ipsec {command[0]} for {CONN}")
        except LabTimeout:
            return Outcome(established=False, auth_failed=False,
                           detail=f"ipsec auto --up {CONN} gave no result within {timeout:g}s; "
                                  f"states: {self._states().strip() or 'none'}")
        states = self._states()
        ike_up = STATES["ike"] in states or bool(IKEV1_STATES["ike"].search(states))
        child_up = STATES["child"] in states or bool(IKEV1_STATES["child"].search(states))
        # Lines are "NNN <text>"; drop the reply codes and pluto's FIPS advice about short PSKs.
        lines = [re.sub(r"^\d{3} ", "", line) for line in result.output.strip().splitlines()
                 if "PSK length" not in line]
        return Outcome(established=ike_up and (child_up or self.childless),
                       auth_failed=bool(re.search(r"AUTHENTICATION_FAILED|authentication failed", result.output)),
                       detail="\n".join(lines[-6:]) or f"ipsec auto --up exited {result.exit_code}")

    def rekey_child(self) -> None:
        # queues the CREATE_CHILD_SA with N(REKEY_SA) for lab's CHILD SA and returns (whack does not wait for it)
        self._ipsec("whack", "--name", CONN, "--rekey-ipsec", "--asynchronous", check=True)

    def initiate_additional(self, timeout: float) -> Outcome:
        # pluto finds lab's IKE SA to the same peer and adds the CHILD SA to it with a CREATE_CHILD_SA
        try:
            result = self._ipsec("auto", "--up", EXTRA, timeout=timeout)
        except LabTimeout:
            return Outcome(established=False, auth_failed=False,
                           detail=f"ipsec auto --up {EXTRA} gave no result within {timeout:g}s")
        up = any(m.group(2) == EXTRA for m in CHILD_STATE.finditer(self._states()))
        lines = [re.sub(r"^\d{3} ", "", line) for line in result.output.strip().splitlines()]
        return Outcome(established=up, auth_failed=False,
                       detail="\n".join(lines[-4:]) or f"ipsec auto --up exited {result.exit_code}")

    def _states(self) -> str:
        return self._ipsec("whack", "--showstates", check=True).output

    def child_sas(self) -> list[ChildSa]:
        text = self._states()
        spis = {m.group(1): m for m in SPIS.finditer(text)}
        sas = []
        for state in CHILD_STATE.finditer(text):
            m = spis.get(state.group(1))
            if m is None:
                continue
            first_spi, first_at, second_spi = m.group(2), m.group(3), m.group(4)
            spi_in, spi_out = ((first_spi, second_spi) if first_at == self.node.address
                               else (second_spi, first_spi))
            # pluto floats IKE to 4500 exactly when it UDP-encapsulates ESP (NAT seen, or forced).
            sas.append(ChildSa(state.group(2), int(spi_in, 16), int(spi_out, 16),
                               udp_encapsulated=state.group(3) == "4500"))
        return sas

    def close_child(self, timeout: float) -> None:
        # Each CHILD SA of the connection is a state of its own (#N in --showstates); deleting that state sends an
        # INFORMATIONAL with a Delete for its ESP SPI and leaves the IKE SA (its parent state) up.
        children = [m.group(1) for m in CHILD_STATE.finditer(self._states()) if m.group(2) == CONN]
        if not children:
            raise HarnessError(f"{self.node.name}: no CHILD SA of {CONN} to delete; states: {self._states().strip()}")
        for state in children:
            self._ipsec("whack", "--deletestate", state, timeout=timeout, check=True)

    def terminate(self, timeout: float) -> None:
        # Deletes the IKE SA and its CHILD SAs, sending an INFORMATIONAL with Delete to the peer.
        self._ipsec("auto", "--down", CONN, timeout=timeout)

    def version(self) -> str:
        return self._ipsec("--version").output.strip()
