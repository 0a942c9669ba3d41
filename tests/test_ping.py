"""The data-plane probe: how ping is asked, and how its answer is read."""
from harness.lab import ExecResult
from harness.ping import ping


class Node:
    name = "vtep1"

    def __init__(self, output: str):
        self.output, self.argv = output, None

    def exec(self, argv, *, timeout, what):
        self.argv, self.timeout = argv, timeout
        return ExecResult(0, self.output)


def test_a_slow_reply_still_counts_ping_runs_to_a_deadline():
    """Without -w, iputils ping stops waiting about two round trips after the last reply it got, so the third
    echo answered 270 ms late (a loaded microVM) counted as lost though it was on the wire."""
    node = Node("3 packets transmitted, 3 received, 0% packet loss")
    result = ping(node, "198.19.2.1", source="198.19.1.1", count=3, interval=0.05, wait_s=1)
    assert node.argv[node.argv.index("-w") + 1] == "2"  # ceil(3 x 0.05 + 1)
    assert node.argv[node.argv.index("-W") + 1] == "1" and node.argv[-1] == "198.19.2.1"
    assert node.timeout > 2 and result.all_answered and (result.sent, result.received) == (3, 3)
