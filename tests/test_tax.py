"""harness.tax without a lab: iperf3's JSON and ping's summary parsed, what is recorded, and the IP lengths
read from a capture built here."""
import json
from types import SimpleNamespace

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from harness import tax
from harness.errors import HarnessError
from harness.ping import Ping

REPORT = {  # iperf3 3.12 -J, trimmed to what a report always holds
    "start": {"connected": [{"local_host": "198.19.1.1", "remote_host": "198.19.2.1", "remote_port": 5201}],
              "test_start": {"protocol": "TCP", "duration": 2}},
    "intervals": [{"sum": {"bytes": 29884416, "bits_per_second": 239075328.0}}],
    "end": {"sum_sent": {"seconds": 2.0, "bytes": 58720256, "bits_per_second": 234881024.0, "retransmits": 41,
                         "sender": True},
            "sum_received": {"seconds": 2.004, "bytes": 58327040, "bits_per_second": 232842475.5, "sender": True}},
}


def test_iperf_report_is_read_from_the_receivers_sum():
    got = tax.parse_iperf(json.dumps(REPORT))
    assert got == tax.Throughput(232842475.5, 58327040, 41, seconds=2.004)
    assert got.carried and round(got.mbps, 1) == 232.8
    assert "232.8 Mbit/s (58327040 bytes received in 2.004 s, 41 retransmits)" == got.describe()


def test_iperf_text_before_its_json_is_skipped():
    assert tax.parse_iperf("iperf3: warning - something\n" + json.dumps(REPORT)).received_bytes == 58327040


def test_iperf_error_is_a_result_not_a_harness_failure():
    report = {"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection timed out"}
    got = tax.parse_iperf(json.dumps(report))
    assert not got.carried and got.error == "unable to connect to server: Connection timed out"
    assert "Connection timed out" in got.describe()


@pytest.mark.parametrize("output", ["", "OCI runtime exec failed: iperf3: not found", '{"end": {}}', "{not json"])
def test_output_that_is_no_iperf_report_raises(output):
    with pytest.raises(HarnessError, match="iperf3"):
        tax.parse_iperf(output)


PING = """PING 198.19.2.1 (198.19.2.1) from 198.19.1.1 : 56(84) bytes of data.
64 bytes from 198.19.2.1: icmp_seq=1 ttl=64 time=0.568 ms

--- 198.19.2.1 ping statistics ---
20 packets transmitted, 20 received, 0% packet loss, time 955ms
rtt min/avg/max/mdev = 0.068/0.633/1.780/0.473 ms
"""
LOST = """--- 198.19.2.1 ping statistics ---
20 packets transmitted, 0 received, 100% packet loss, time 1001ms
"""


def test_rtt_is_pings_average():
    assert tax.parse_rtt(PING) == 0.633
    assert tax.parse_rtt(LOST) is None


class Recorder:
    def __init__(self, folder):
        self.dir, self.measurements = folder, {}

    def measure(self, name, value):
        self.measurements[name] = value


def figures(overlay: tax.Throughput, carried: int, rtt: float | None = 0.6) -> tax.Tax:
    answered = Ping(20, 20 if rtt else 0, "")
    return tax.Tax(overlay, tax.Throughput(16e9, 4_000_000_000), tax.RoundTrip(answered, rtt),
                   tax.RoundTrip(Ping(20, 20, ""), 0.08), carried)


def test_the_overlay_counts_as_carried_only_if_its_bytes_left_over_the_underlay():
    through = tax.Throughput(2e9, 500_000_000)
    assert figures(through, carried=520_000_000).underlay_carried_overlay
    assert not figures(through, carried=1_000).underlay_carried_overlay  # it never left the node: not the overlay
    assert not figures(tax.Throughput(0.0, 0, error="refused"), carried=0).underlay_carried_overlay


def test_record_keeps_only_what_was_measured(tmp_path):
    lab = Recorder(tmp_path)
    figures(tax.Throughput(2e9, 500_000_000), carried=520_000_000).record(lab, overhead_bytes=50)
    assert lab.measurements == {"overlay_mbps": 2000.0, "underlay_mbps": 16000.0, "overlay_rtt_ms": 0.6,
                                "underlay_rtt_ms": 0.08, "overhead_bytes": 50, "tax_seconds": tax.SECONDS}
    account = (tmp_path / "overlay-tax.txt").read_text()
    assert "overhead: 50 bytes" in account and "1-second TCP runs, one way; RTT: 10 echoes 10 ms apart" in account
    lab = Recorder(tmp_path)
    figures(tax.Throughput(0.0, 0, error="refused"), carried=0, rtt=None).record(lab)
    assert set(lab.measurements) == {"underlay_mbps", "underlay_rtt_ms", "tax_seconds"}
    assert "iperf3 failed: refused" in (tmp_path / "overlay-tax.txt").read_text()


class Node:
    """A lab node that runs nothing: it answers each command from `answers` (argv[0] -> output) and logs it."""

    def __init__(self, answers):
        self.name, self.answers, self.ran = "vtep2", answers, []

    def exec(self, argv, timeout=None, check=False, what=None):
        self.ran.append(argv)
        output = self.answers[argv[0]]
        return SimpleNamespace(output=output() if callable(output) else output, ok=True, exit_code=0)


SS = """LISTEN 0      5            0.0.0.0:5201      0.0.0.0:*
LISTEN 0      4096    127.0.0.11:40155      0.0.0.0:*
LISTEN 0      5               [::]:5202         [::]:*
"""


def test_ss_shows_which_ports_listen():
    assert tax.listening(SS) == {5201, 40155, 5202}
    assert tax.listening("") == set()


def test_both_servers_start_in_one_go_and_are_waited_for_together():
    shown = iter(["", SS.splitlines()[0], SS])  # the second server comes up a little after the first
    server = Node({"sh": "", "ss": lambda: next(shown)})
    tax.serve(server, (tax.OVERLAY_PORT, tax.UNDERLAY_PORT))
    assert server.ran[0] == ["sh", "-c", "iperf3 -s -1 -D -p 5201 && iperf3 -s -1 -D -p 5202"]
    assert [argv[0] for argv in server.ran] == ["sh", "ss", "ss", "ss"]


def test_a_run_is_one_second_one_way_the_shortest_iperf3_takes():
    """iperf3 3.12 reads -t 0.5 as 0, which runs forever; -n ends when the sender has buffered the bytes, long before
    they arrived (see harness.tax): one whole second, client to server."""
    client = Node({"iperf3": json.dumps(REPORT)})
    got = tax.throughput(client, "198.19.2.1", source="198.19.1.1", port=tax.UNDERLAY_PORT)
    argv = client.ran[0]
    assert argv[argv.index("-t") + 1] == "1" and "-n" not in argv and "-R" not in argv and "--bidir" not in argv
    assert argv[argv.index("-p") + 1] == "5202" and argv[argv.index("-B") + 1] == "198.19.1.1"
    assert got.received_bytes == 58327040


def test_ip_packets_give_outer_lengths_ports_and_the_payloads_first_bytes(tmp_path):
    a, b = "198.18.1.2", "198.18.1.3"
    esp_in_udp = IP(src=a, dst=b) / UDP(sport=4500, dport=4500) / Raw(bytes.fromhex("c0ffee01") + bytes(1076))
    frames = [Ether() / ARP(psrc=a, pdst=b),
              Ether() / IP(src=a, dst=b, proto=50) / Raw(bytes.fromhex("0000abcd00000001") + bytes(100)),
              Ether() / esp_in_udp,
              Ether() / IP(src=b, dst=a) / ICMP() / Raw(bytes(56))]
    pcap = tmp_path / "capture.pcap"
    wrpcap(str(pcap), frames)
    found = tax.ip_packets(pcap, src=a, dst=b)
    assert [(p.number, p.proto, p.length, p.sport, p.dport) for p in found] == [
        (2, 50, 128, None, None), (3, 17, 1108, 4500, 4500)]
    assert found[0].head == bytes.fromhex("0000abcd00000001") and found[1].head[:4] == bytes.fromhex("c0ffee01")
    assert [p.number for p in tax.ip_packets(pcap)] == [2, 3, 4]
    assert tax.ip_packets(tmp_path / "missing.pcap") == []
