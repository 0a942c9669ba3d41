"""The packet holder (harness/tools_image/hold.py, run in a lab node by harness.faults): which packets its MATCH
holds, how a Hold renders that MATCH and its queue rules, and the IPsec package's CREATE_CHILD_SA request and
response match against messages built with the IKE codec (requests held in the first stage, responses in the
second; other exchanges and ESP in UDP passed)."""
import importlib.util
import io
import os
import tarfile
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from harness.errors import HarnessError
from harness.faults import HOLD_QUEUE, ByteMatch, Hold, Impairment, Stage
from harness.protocols.ipsec import ike
from harness.protocols.ipsec.fixtures import CREATE_CHILD_SA_REQUEST, CREATE_CHILD_SA_RESPONSE

HOLD_PY = Path(__file__).resolve().parent.parent / "harness" / "tools_image" / "hold.py"
_spec = importlib.util.spec_from_file_location("hold", HOLD_PY)
hold = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hold)

IKE_REQUESTS = Hold(("-p", "udp", "--dport", "500:4500"),
                    (Stage(CREATE_CHILD_SA_REQUEST), Stage(CREATE_CHILD_SA_RESPONSE)))


def ike_message(exchange: str, flags: int) -> bytes:
    payload = ike.Opaque.of(46, os.urandom(48))  # an SK payload: what a CREATE_CHILD_SA carries is encrypted
    return bytes(ike.Isakmp(ispi=os.urandom(8), rspi=os.urandom(8), exchange=exchange, flags=flags,
                            message_id=3, payloads=[payload]))


def datagram(data: bytes, port: int, *, marker: bool = True, v6: bool = False) -> bytes:
    """IKE in UDP as it leaves a node: to port 4500 behind the non-ESP marker (RFC 3948 2.2)."""
    body = (bytes(4) if port == 4500 and marker else b"") + data
    network = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="198.18.0.2", dst="198.18.0.3")
    return bytes(network / UDP(sport=port, dport=port) / body)


def held(packet: bytes, stage: int = 0) -> bool:
    return hold.matches(packet, hold.parse_match(IKE_REQUESTS.stages[stage].spec()))


REQUEST, RESPONSE = ike.FLAG_INITIATOR, ike.FLAG_RESPONSE


@pytest.mark.parametrize("port", [500, 4500])
@pytest.mark.parametrize("flags", [REQUEST, 0])  # a request from the original initiator, or from the responder
def test_a_create_child_sa_request_is_held(port, flags):
    assert held(datagram(ike_message("CREATE_CHILD_SA", flags), port))


@pytest.mark.parametrize("port", [500, 4500])
@pytest.mark.parametrize("exchange, flags, answered", [
    ("CREATE_CHILD_SA", RESPONSE, True), ("CREATE_CHILD_SA", RESPONSE | REQUEST, True),
    ("CREATE_CHILD_SA", REQUEST, False), ("INFORMATIONAL", RESPONSE, False)])
def test_the_second_stage_holds_create_child_sa_responses_only(port, exchange, flags, answered):
    assert held(datagram(ike_message(exchange, flags), port), stage=1) is answered


def test_over_ipv6_too():
    assert held(datagram(ike_message("CREATE_CHILD_SA", REQUEST), 4500, v6=True))


@pytest.mark.parametrize("port", [500, 4500])
@pytest.mark.parametrize("exchange, flags", [("CREATE_CHILD_SA", RESPONSE), ("CREATE_CHILD_SA", RESPONSE | REQUEST),
                                             ("INFORMATIONAL", REQUEST), ("IKE_AUTH", REQUEST)])
def test_responses_and_other_exchanges_pass(port, exchange, flags):
    assert not held(datagram(ike_message(exchange, flags), port))


def test_esp_in_udp_passes_even_where_its_bytes_look_like_a_request():
    # ESP in UDP starts with a non-zero SPI where IKE has the non-ESP marker; its payload is anything, here the
    # bytes of a CREATE_CHILD_SA request at the offsets IKE would have them
    esp = (0x0C0FFEE0).to_bytes(4, "big") + ike_message("CREATE_CHILD_SA", REQUEST)
    assert not held(datagram(esp, 4500, marker=False))


def test_a_request_to_another_port_or_cut_short_passes():
    request = ike_message("CREATE_CHILD_SA", REQUEST)
    assert not held(bytes(IP() / UDP(sport=500, dport=501) / request))
    assert not held(datagram(request[:18], 500))  # ends before the exchange type
    assert not held(bytes(IP(proto=50) / request))  # no transport header to count from


def test_mask_compares_only_its_bits():
    alternatives = hold.parse_match("0:f0/f0")
    packet = bytes(IP() / UDP(sport=0xF5FF, dport=1))
    assert hold.matches(packet, alternatives)
    assert not hold.matches(bytes(IP() / UDP(sport=0x0FFF, dport=1)), alternatives)


@pytest.mark.parametrize("text", ["26", "26:", "x:24", "26:2g", "26:24/ffff", "-1:24", "26:24,", ""])
def test_a_bad_match_is_refused_naming_the_part(text):
    with pytest.raises(ValueError, match="match part"):
        hold.parse_match(text)


def test_hold_renders_its_stages_and_a_queue_rule_per_direction():
    stage = Stage(((ByteMatch(2, b"\x01\xf4"), ByteMatch(27, b"\x00", b"\x20")), (ByteMatch(0, b"\x01"),)), count=3)
    assert Hold(("-p", "udp"), (stage, Stage(((ByteMatch(4, b"\xff"),),))), timeout_s=2.5).argv(7) == \
        ["hold", "7", "2.5", "3", "2:01f4,27:00/20|0:01", "2", "4:ff"]
    queue = f"-p udp --dport 500:4500 -j NFQUEUE --queue-num {HOLD_QUEUE} --queue-bypass"
    assert IKE_REQUESTS.rules("-A").splitlines() == [
        "set -e", f"iptables -t mangle -A PREROUTING {queue}", f"iptables -t mangle -A POSTROUTING {queue}"]
    assert f"iptables -t mangle -D PREROUTING {queue}" in IKE_REQUESTS.rules("-D")


def test_a_hold_is_done_when_its_last_stage_released():
    assert not IKE_REQUESTS.done("bound\nstage 1: held 1/2 at 0.1s\nstage 1: held 2/2 at 0.2s\nstage 1: released 2\n")
    assert IKE_REQUESTS.done("bound\nstage 1: released 2\nstage 2: held 1/2 at 0.3s\nstage 2: released 2\n")
    assert IKE_REQUESTS.done("bound\nstage 1: timeout: released 1 of 2\nstage 2: timeout: released 0 of 2\n")


@pytest.mark.parametrize("kwargs", [dict(stages=()), dict(directions=("up",)), dict(matching=("-p", "udp; reboot")),
                                    dict(matching=())])
def test_hold_refuses_what_it_cannot_render(kwargs):
    with pytest.raises(ValueError):
        Hold(**{"matching": ("-p", "udp"), "stages": (Stage(CREATE_CHILD_SA_REQUEST),), **kwargs})


@pytest.mark.parametrize("kwargs", [dict(count=0), dict(alternatives=()), dict(alternatives=((),))])
def test_a_stage_refuses_what_it_cannot_render(kwargs):
    with pytest.raises(ValueError):
        Stage(**{"alternatives": CREATE_CHILD_SA_REQUEST, **kwargs})


@pytest.mark.parametrize("argv", [["7", "10", "2", "26"], ["7", "10", "2"], ["7", "10"], ["7", "10", "0", "2:01"],
                                  ["7", "x", "2", "2:01"]])
def test_the_holder_says_usage_on_bad_arguments(capsys, argv):
    assert hold.main(argv) == 2
    assert "usage: hold" in capsys.readouterr().out


class FakeContainer:
    """A one-shot sidecar as harness.faults uses it: the files put in it, its command, whether it was removed."""
    def __init__(self, command, output=b""):
        self.command, self.output, self.files, self.status, self.removed = command, output, {}, "created", False

    def put_archive(self, _path, data):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                self.files["/" + member.name] = tar.extractfile(member).read().decode()

    def start(self):
        self.status = "running"

    def wait(self, timeout):
        return {"StatusCode": 0}

    def logs(self, stdout=True, stderr=True):
        return self.output

    def reload(self):
        pass

    def remove(self, force=False):
        self.removed = True


class FakeLab:
    def __init__(self):
        self.containers = []

    def sidecar(self, name, image, of, command, cap_add):
        container = FakeContainer(command, b"bound\n" if command[0] == "hold" else b"")
        self.containers.append(container)
        return container


class FakeNode:
    name = "responder"

    def status(self):
        return ("running", None)


def test_a_hold_starts_the_holder_before_queueing_to_it_and_clear_undoes_both():
    lab = FakeLab()
    impairment = Impairment(lab, FakeNode(), "tools").hold(IKE_REQUESTS)
    holder, adding = lab.containers
    assert holder.command == IKE_REQUESTS.argv(HOLD_QUEUE)
    assert list(adding.files.values()) == [IKE_REQUESTS.rules("-A")]
    assert impairment.held() == "bound\n"
    impairment.clear()
    deleting = lab.containers[-1]
    assert list(deleting.files.values()) == [IKE_REQUESTS.rules("-D")] and holder.removed
    assert impairment.held() == "" and impairment.describe() == "no faults"


def test_a_hold_refuses_a_vm_nodes_bridge():
    node = FakeNode()
    node.bridge_ports = ("eth0", "tap0")
    with pytest.raises(HarnessError, match="bridges a VM's frames"):
        Impairment(FakeLab(), node, "tools").hold(IKE_REQUESTS)
