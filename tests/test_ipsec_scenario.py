"""The IPsec scenario model and one adapter's translation of it (IANA names -> strongSwan keywords)."""
import pytest

from harness.errors import ConfigError
from harness.protocols.ipsec.scenario import EspProposal, IkeProposal, Scenario
from harness.vendor import load_vendor
from pathlib import Path

STRONGSWAN = load_vendor(Path(__file__).resolve().parent.parent / "vendors" / "strongswan")


def test_responder_overrides_apply_to_the_responder_only():
    other = (IkeProposal(group="MODP_3072"),)
    scenario = Scenario(responder_psk="other", responder_ike=other)
    assert scenario.psk_of("initiator") == scenario.psk and scenario.psk_of("responder") == "other"
    assert scenario.ike_of("initiator") == (IkeProposal(),) and scenario.ike_of("responder") == other
    assert scenario.esp_of("responder") == scenario.esp


def test_strongswan_proposal_keywords():
    module = __import__(STRONGSWAN.adapter_class().__module__, fromlist=["ike_proposal"])
    assert module.ike_proposal(IkeProposal()) == "aes128-sha256-prfsha256-modp2048"
    assert module.ike_proposal(IkeProposal(encryption="ENCR_AES_GCM_16_256", group="CURVE25519")) == \
        "aes256gcm16-prfsha256-curve25519"  # AEAD: no integrity transform
    assert module.esp_proposal(EspProposal(encryption="ENCR_AES_GCM_16_256", integrity=None)) == "aes256gcm16"
    with pytest.raises(ConfigError, match="^scenario: ike: strongswan adapter has no keyword for ENCR_DES$"):
        module.ike_proposal(IkeProposal(encryption="ENCR_DES"))


def test_pki_issues_certificates_for_the_identity_from_one_ca_per_key_type():
    from cryptography import x509
    from harness.protocols.ipsec import pki
    a, b = pki.issue("initiator.lab", "rsa"), pki.issue("responder.lab", "rsa")
    assert a.ca_pem == b.ca_pem and a.cert_pem != b.cert_pem
    cert = x509.load_pem_x509_certificate(a.cert_pem)
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["initiator.lab"]
    ca = x509.load_pem_x509_certificate(a.ca_pem)
    cert.verify_directly_issued_by(ca)
    assert pki.issue("initiator.lab", "ecdsa").ca_pem != a.ca_pem
    with pytest.raises(ValueError, match="unknown key type"):
        pki.issue("x.lab", "dsa")


def test_a_scenario_slowed_for_a_microvm_stretches_every_timer_and_nothing_else():
    from harness.protocols.ipsec.scenario import Scenario
    fast = Scenario(dpd_action="restart", dpd_delay_s=1, retransmit_timeout_s=0.5, retransmit_tries=2,
                    child_rekey_s=2, ike_rekey_s=3)
    slow = fast.slowed(6)
    assert (slow.dpd_delay_s, slow.retransmit_timeout_s, slow.retransmit_tries, slow.child_rekey_s,
            slow.ike_rekey_s) == (6, 3.0, 2, 12, 18)
    assert slow.dead_peer_after_s == 6 * fast.dead_peer_after_s
    assert (slow.psk, slow.ike, slow.esp, slow.dpd_action) == (fast.psk, fast.ike, fast.esp, fast.dpd_action)
    assert Scenario().slowed(6) == Scenario() and fast.slowed(1) is fast
    assert Scenario(dpd_delay_s=1).slowed(1.5).dpd_delay_s == 2  # whole seconds stay whole


HOST = __import__("harness.host", fromlist=["HostCapabilities"]).HostCapabilities(present={"kernel-esp": False},
                                                                                   details={})
LIBRESWAN = load_vendor(Path(__file__).resolve().parent.parent / "vendors" / "libreswan")
PFS_ESN = EspProposal(encryption="ENCR_AES_GCM_16_128", integrity=None, group="MODP_2048", esn=("ESN",))


def _rendered(vendor, scenario: Scenario, role: str = "initiator") -> dict[str, str]:
    from harness.protocols.ipsec.fixtures import side_of
    side = side_of(role, scenario, {"initiator": "198.18.0.2", "responder": "198.18.0.3"})
    return vendor.adapter_class()(None, HOST).render(scenario, side)


def test_an_esp_proposal_offers_pfs_and_esn_by_transform_type():
    assert PFS_ESN.transforms == ("ENCR_AES_GCM_16_128", "MODP_2048", "ESN")
    assert EspProposal(esn=("ESN", "NO_ESN")).transforms == ("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128", "ESN",
                                                             "NO_ESN")
    assert EspProposal().transforms == ("ENCR_AES_CBC_128", "AUTH_HMAC_SHA2_256_128")  # no PFS, vendor's ESN
    with pytest.raises(ValueError, match="esn must list"):
        EspProposal(esn=("esn",))


def test_strongswan_renders_pfs_and_esn_in_esp_proposals():
    module = __import__(STRONGSWAN.adapter_class().__module__, fromlist=["esp_proposal"])
    assert module.esp_proposal(PFS_ESN) == "aes128gcm16-modp2048-esn"
    assert module.esp_proposal(EspProposal(group="ECP_256", esn=("ESN", "NO_ESN"))) == "aes128-sha256-ecp256-esn-noesn"
    conf = _rendered(STRONGSWAN, Scenario(esp=(PFS_ESN,)))["/etc/swanctl/swanctl.conf"]
    assert "esp_proposals = aes128gcm16-modp2048-esn\n" in conf


def test_libreswan_renders_pfs_as_a_group_after_a_semicolon_and_esn_per_connection():
    module = __import__(LIBRESWAN.adapter_class().__module__, fromlist=["esp_proposal"])
    assert module.esp_proposal(PFS_ESN) == "aes_gcm128;modp2048"  # "aes_gcm128-modp2048" reads modp2048 as INTEG
    assert module.esp_proposal(EspProposal(group="MODP_3072")) == "aes128-sha2_256_128;modp3072"
    conf = _rendered(LIBRESWAN, Scenario(esp=(PFS_ESN,)))["/etc/ipsec.conf"]
    assert "\n    esp=aes_gcm128;modp2048\n" in conf and "\n    pfs=yes\n" in conf and "\n    esn=yes\n" in conf
    either = _rendered(LIBRESWAN, Scenario(esp=(EspProposal(esn=("NO_ESN", "ESN")),)))["/etc/ipsec.conf"]
    assert "\n    pfs=no\n" in either and "\n    esn=either\n" in either
    assert "esn=" not in _rendered(LIBRESWAN, Scenario())["/etc/ipsec.conf"].split("conn lab", 1)[1]
    with pytest.raises(ConfigError, match="^scenario: esp: libreswan 4.10 takes one ESP key exchange group"):
        _rendered(LIBRESWAN, Scenario(esp=(EspProposal(group="MODP_3072"), EspProposal(group="MODP_2048"))))
    with pytest.raises(ConfigError, match="^scenario: esp: libreswan has one esn= per connection"):
        _rendered(LIBRESWAN, Scenario(esp=(EspProposal(esn=("ESN",)), EspProposal(esn=("NO_ESN",)))))


def test_transport_mode_protects_the_hosts_and_each_adapter_renders_it():
    from harness.protocols.ipsec.fixtures import side_of
    addresses = {"initiator": "198.18.0.2", "responder": "198.18.0.3"}
    mismatch = Scenario(mode="transport", responder_mode="tunnel")
    assert mismatch.hosts_only and mismatch.mode_of("responder") == "tunnel"
    side = side_of("responder", mismatch, addresses)
    assert (side.subnet, side.peer_subnet) == ("198.18.0.3/32", "198.18.0.2/32")  # the mode alone differs
    with pytest.raises(ValueError, match="mode must be one of tunnel, transport"):
        Scenario(mode="beet")
    swan = _rendered(STRONGSWAN, Scenario(mode="transport"))["/etc/swanctl/swanctl.conf"]
    assert "mode = transport\n" in swan and "local_ts = 198.18.0.2/32\n" in swan
    assert "mode = " not in _rendered(STRONGSWAN, mismatch, "responder")["/etc/swanctl/swanctl.conf"]
    pluto = _rendered(LIBRESWAN, Scenario(mode="transport"))["/etc/ipsec.conf"]
    assert "\n    type=transport\n" in pluto and "subnet=" not in pluto and "leftsourceip" not in pluto


def test_the_responder_sees_its_own_subnets_for_narrowing():
    from harness.protocols.ipsec.fixtures import side_of
    addresses = {"initiator": "198.18.0.2", "responder": "198.18.0.3"}
    scenario = Scenario(subnets={"initiator": "198.19.1.0/24", "responder": "198.19.0.0/16"},
                        responder_subnets={"initiator": "198.19.1.0/24", "responder": "198.19.2.0/24"})
    assert side_of("initiator", scenario, addresses).peer_subnet == "198.19.0.0/16"
    assert side_of("responder", scenario, addresses).subnet == "198.19.2.0/24"
    assert scenario.own_subnet("responder") == "198.19.2.0/24"  # where its inner address lives
    assert "\n    narrowing=yes\n" in _rendered(LIBRESWAN, scenario, "responder")["/etc/ipsec.conf"]


def test_rsa_schemes_render_per_role():
    scenario = Scenario(auth="rsa", rsa_scheme="pkcs1", responder_rsa_scheme="pss", childless=True)
    assert (scenario.rsa_scheme_of("initiator"), scenario.rsa_scheme_of("responder")) == ("pkcs1", "pss")
    with pytest.raises(ValueError, match="rsa_scheme must be one of pss, pkcs1, legacy"):
        Scenario(rsa_scheme="pss256")
    assert "rsa_pss = yes" in _rendered(STRONGSWAN, scenario, "responder")["/etc/strongswan.conf"]
    legacy = _rendered(STRONGSWAN, Scenario(auth="rsa", rsa_scheme="legacy"))["/etc/strongswan.conf"]
    assert "signature_authentication = no" in legacy and "rsa_pss" not in legacy
    assert "\n    authby=rsa-sha2\n" in _rendered(LIBRESWAN, scenario, "responder")["/etc/ipsec.conf"]
    assert "\n    authby=rsa-sha1\n" in _rendered(LIBRESWAN, Scenario(auth="rsa", rsa_scheme="legacy"))[
        "/etc/ipsec.conf"]
    assert "\n    authby=rsasig\n" in _rendered(LIBRESWAN, Scenario(auth="rsa"))["/etc/ipsec.conf"]
    with pytest.raises(ConfigError, match="^scenario: rsa_scheme: libreswan 4.10 has no authby= for pkcs1$"):
        _rendered(LIBRESWAN, scenario, "initiator")


def test_ppk_renders_the_initiators_ppk_id_and_both_sides_keys():
    scenario = Scenario(childless=True, ppk_id="lab-ppk-1", responder_ppk_id="other", responder_ppk_required=True)
    assert (scenario.ppk_id_of("responder"), scenario.ppk_required_of("initiator")) == ("other", False)
    initiator = _rendered(STRONGSWAN, scenario)["/etc/swanctl/swanctl.conf"]
    assert "ppk_id = lab-ppk-1\n" in initiator and "ppk_required = no\n" in initiator
    responder = _rendered(STRONGSWAN, scenario, "responder")["/etc/swanctl/swanctl.conf"]
    # on a strongSwan responder ppk_id would be a constraint that refuses another PPK_ID even when optional
    assert "ppk_id =" not in responder and "ppk_required = yes\n" in responder and "id = other\n" in responder
    pluto = _rendered(LIBRESWAN, scenario, "responder")
    assert "\n    ppk=insist\n" in pluto["/etc/ipsec.conf"]
    assert '@responder.lab @initiator.lab : PPKS "other" 0x' in pluto["/etc/ipsec.secrets"]
    assert "ppk" not in _rendered(LIBRESWAN, Scenario())["/etc/ipsec.conf"].split("conn lab", 1)[1]


def test_id_types_give_matching_identities_certificates_and_vendor_ids():
    from cryptography import x509
    from harness.protocols.ipsec.fixtures import side_of
    addresses = {"initiator": "198.18.0.2", "responder": "198.18.0.3"}
    for id_type, identity, alt in (("ipv4", "198.18.0.2", x509.IPAddress),
                                   ("email", "initiator@lab.example", x509.RFC822Name),
                                   ("dn", "CN=initiator.lab", x509.DNSName)):
        side = side_of("initiator", Scenario(auth="rsa", id_type=id_type), addresses)
        assert side.identity == identity and side.id_type == id_type
        cert = x509.load_pem_x509_certificate(side.credentials.cert_pem)
        assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(alt)
    assert side_of("initiator", Scenario(send_idr=False), addresses).peer_identity is None
    assert side_of("responder", Scenario(responder_peer_id="x.lab"), addresses).peer_identity == "x.lab"
    dn = _rendered(LIBRESWAN, Scenario(auth="rsa", id_type="dn"))["/etc/ipsec.conf"]
    assert '\n    leftid="CN=initiator.lab"\n' in dn and '\n    rightid="CN=responder.lab"\n' in dn
    anyone = _rendered(STRONGSWAN, Scenario(auth="rsa", send_idr=False))["/etc/swanctl/swanctl.conf"]
    assert 'id = "initiator.lab"\n' in anyone and "id = %any\n" in anyone
    assert "\n@initiator.lab @responder.lab : PSK 0x" in _rendered(LIBRESWAN, Scenario())["/etc/ipsec.secrets"]
    with pytest.raises(ValueError, match="id_type must be one of"):
        Scenario(id_type="keyid")


def test_libreswan_narrows_only_when_asked_and_reads_instances_in_its_state_table():
    # narrowing=yes turns the responder's connection into an instance ("lab"[1]) even when the selectors match
    assert "narrowing" not in _rendered(LIBRESWAN, Scenario(), "responder")["/etc/ipsec.conf"]
    module = __import__(LIBRESWAN.adapter_class().__module__, fromlist=["Libreswan"])
    states = ('000 #2: "lab"[1] 198.18.0.2:4500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); REKEY in 1s\n'
              '000 #2: "lab"[1] 198.18.0.2 esp.53b07b5d@198.18.0.2 esp.7b0a9284@198.18.0.3 Traffic: ESPin=0B\n'
              '000 #4: "lab":500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); REKEY in 1s\n'
              '000 #4: "lab" esp.11111111@198.18.0.2 esp.22222222@198.18.0.3 Traffic: ESPin=0B\n')

    class Node:
        address = "198.18.0.3"

        def exec(self, *args, **kwargs):
            return type("R", (), {"output": states, "ok": True, "exit_code": 0})()
    sas = module.Libreswan(Node(), HOST).child_sas()
    assert [(sa.spi_in, sa.spi_out, sa.udp_encapsulated) for sa in sas] == [
        (0x7B0A9284, 0x53B07B5D, True), (0x22222222, 0x11111111, False)]


VPNC = load_vendor(Path(__file__).resolve().parent.parent / "vendors" / "vpnc")


def test_ikev1_remote_access_renders_a_group_xauth_and_a_pool():
    """The responder names the initiator by its group (ID_KEY_ID) and checks an XAUTH round, with the initiator's
    first address as its pool; vpnc gets the group, the user and the scenario's DH group."""
    with pytest.raises(ValueError, match="need ike_version 1"):
        Scenario(aggressive=True)
    with pytest.raises(ValueError, match="needs aggressive and auth psk"):
        Scenario(ike_version=1, remote_access=True)
    scenario = Scenario(ike_version=1, aggressive=True, remote_access=True, ike=(IkeProposal(group="MODP_1536"),))
    responder = _rendered(STRONGSWAN, scenario, "responder")
    swan = responder["/etc/swanctl/swanctl.conf"]
    assert "version = 1\n" in swan and "aggressive = yes\n" in swan and 'id = "keyid:interop-group"' in swan
    assert "auth = xauth\n" in swan and "xauth_id = interop-user\n" in swan and "addrs = 198.19.1.1/32\n" in swan
    assert "remote_ts = dynamic\n" in swan and "pools = ra\n" in swan
    assert "i_dont_care_about_security_and_use_aggressive_mode_psk = yes" in responder["/etc/strongswan.conf"]
    assert "version = 2\n" in _rendered(STRONGSWAN, Scenario())["/etc/swanctl/swanctl.conf"]
    vpnc = _rendered(VPNC, scenario)["/etc/vpnc/lab.conf"].splitlines()
    assert {"IPSec gateway 198.18.0.3", "IPSec ID interop-group", "Xauth username interop-user",
            "IKE DH Group dh5", "Perfect Forward Secrecy nopfs"} <= set(vpnc)
    assert "Enable weak encryption" not in vpnc
    weak = Scenario(ike_version=1, aggressive=True, remote_access=True, ike=(IkeProposal(encryption="ENCR_3DES"),))
    assert "Enable weak encryption" in _rendered(VPNC, weak)["/etc/vpnc/lab.conf"].splitlines()
    with pytest.raises(ConfigError, match="remote_access"):
        _rendered(VPNC, Scenario())


def test_libreswan_renders_ikev1_and_both_sides_of_remote_access():
    site = Scenario(ike_version=1, aggressive=True, esp=(EspProposal(encryption="ENCR_3DES",
                                                                     integrity="AUTH_HMAC_SHA1_96"),))
    pluto = _rendered(LIBRESWAN, site)["/etc/ipsec.conf"]
    assert "\n    ikev2=no\n" in pluto and "\n    aggressive=yes\n" in pluto and "ikev1-policy=accept" in pluto
    assert "\n    ike=aes128-sha2_256;modp2048\n" in pluto and "\n    esp=3des-sha1\n" in pluto
    assert "ikev2=yes" in _rendered(LIBRESWAN, Scenario())["/etc/ipsec.conf"]
    remote = Scenario(ike_version=1, aggressive=True, remote_access=True)
    server = _rendered(LIBRESWAN, remote, "responder")
    assert "\n    rightaddresspool=198.19.1.1-198.19.1.1\n" in server["/etc/ipsec.conf"]
    assert "leftxauthserver=yes" in server["/etc/ipsec.conf"] and "rightsubnet" not in server["/etc/ipsec.conf"]
    assert "@#696e7465726f702d67726f7570 : PSK" in server["/etc/ipsec.secrets"]  # ID_KEY_ID "interop-group"
    client = _rendered(LIBRESWAN, remote, "initiator")
    conf = client["/etc/ipsec.conf"]
    assert "leftxauthclient=yes" in conf and "leftmodecfgclient=yes" in conf and "leftusername=interop-user" in conf
    assert "\n    leftsubnet=" not in conf and "\n    leftsourceip=" not in conf
    assert "\n    rightsubnet=198.19.2.0/24\n" in conf
    assert "\n    leftid=@#696e7465726f702d67726f7570\n" in conf  # ID_KEY_ID: the group's name
    assert "interop-xauth-3b9d" not in conf + client["/etc/ipsec.secrets"]  # the password goes to whack, not a file


def test_libreswan_reads_ikev1_ipsec_sas_in_its_state_table():
    text = ("000 #1: \"lab\"[1] 198.18.2.2:4500 STATE_AGGR_R2 (ISAKMP SA established); EVENT_SA_EXPIRE in 86387s;\n"
            "000 #2: \"lab\"[1] 198.18.2.2:4500 STATE_QUICK_R2 (IPsec SA established); EVENT_SA_EXPIRE in 28787s;\n"
            "000 #2: \"lab\"[1] 198.18.2.2 esp.ee2a598a@198.18.2.2 esp.ff0a36f5@198.18.2.3 tun.0@198.18.2.2 "
            "tun.0@198.18.2.3 Traffic: ESPin=0B ESPout=0B ESPmax=2^63B username=interop-user\n")
    module = __import__(LIBRESWAN.adapter_class().__module__, fromlist=["CHILD_STATE"])
    assert [m.group(1, 2, 3) for m in module.CHILD_STATE.finditer(text)] == [("2", "lab", "4500")]
    assert [m.group(2) for m in module.SPIS.finditer(text)] == ["ee2a598a"]


def test_libreswan_renders_the_additional_child_sa_as_a_second_connection_on_the_same_ike_sa():
    extra = {"initiator": "198.19.11.0/24", "responder": "198.19.12.0/24"}
    conf = _rendered(LIBRESWAN, Scenario(additional_subnets=extra), "responder")["/etc/ipsec.conf"]
    second = conf[conf.index("\nconn lab-extra\n"):]
    assert "\n    also=lab\n" in second and "\n    leftsubnet=198.19.12.0/24\n" in second and \
        "\n    rightsubnet=198.19.11.0/24\n" in second and "\n    leftsourceip=198.19.12.1\n" in second
    assert "conn lab-extra" not in _rendered(LIBRESWAN, Scenario(), "responder")["/etc/ipsec.conf"]
