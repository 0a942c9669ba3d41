"""A NAT router in a lab: a node of the tools image that masquerades one node's traffic towards another, with
nftables in its own network namespace (never the host's). It knows no protocol.

It sits on the pair's own network: the inside node routes the outside node's address through it, and it forwards
out of the interface the packet came in by, rewriting the source to its own address (conntrack undoes it on the
way back). So the outside node sees only the router's address, as behind any NAT, while the capture on the inside
node still shows that node's own view. It sends no ICMP redirects, which would tell the inside node to go direct.
"""
from __future__ import annotations

from harness.errors import HarnessError
from harness.lab import Lab, Network, Node, tail

RULESET = "/etc/nat.nft"
NFT_TIMEOUT_S = 15
TABLE = "overlay_interop_nat"
ROUTER_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.send_redirects": "0",
                  "net.ipv4.conf.default.send_redirects": "0"}


def ruleset(inside: str, outside: str) -> str:
    """Masquerade what `inside` sends to `outside`; the table is replaced whole, so installing twice is harmless."""
    return "\n".join([
        f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
        "    chain postrouting {",
        "        type nat hook postrouting priority srcnat; policy accept;",
        f'        ip saddr {inside} ip daddr {outside} counter masquerade comment "nat"',
        "    }", "}", ""])


class Nat:
    def __init__(self, lab: Lab, network: Network, tools_image: str, name: str = "nat"):
        self.node = lab.node(name, tools_image, network, command=["sleep", "infinity"], sysctls=ROUTER_SYSCTLS)

    @property
    def address(self) -> str:
        """The address the outside node sees the inside node's traffic come from."""
        return self.node.address

    def install(self, inside: Node, outside: Node) -> None:
        """Once all three run: the masquerade rule, and the inside node's route to the outside node through us."""
        self.node.put_files({RULESET: ruleset(inside.address, outside.address)})
        result = self.node.exec(["nft", "-f", RULESET], timeout=NFT_TIMEOUT_S)
        if not result.ok:
            raise HarnessError(f"{self.node.name}: nft exited {result.exit_code} installing the NAT: "
                               f"{tail(result.output, 5)}")
        inside.exec(["ip", "route", "replace", f"{outside.address}/32", "via", self.address], timeout=10,
                    check=True, what=f"routing {outside.address} through the NAT")

    def translated(self) -> int:
        """Connections masqueraded so far (the rule counts their first packets): 0 means nothing crossed the NAT."""
        result = self.node.exec(["nft", "list", "table", "ip", TABLE], timeout=NFT_TIMEOUT_S, check=True,
                                what="reading the NAT's counter")
        words = result.output.split()
        return int(words[words.index("packets") + 1]) if "packets" in words else 0
