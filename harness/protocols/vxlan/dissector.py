"""VXLAN and Geneve for `overlay-interop transcript`: which frames are overlay traffic, and the transcript (and
ladder) of a capture a user has.

The command (harness.transcript_cli) finds this module by name, as it finds any protocol's `dissector`:

    claims(datagram) -> bool                             UDP to or from 4789, 8472 (VXLAN) or 6081 (Geneve)
    transcript(path, keys_from=(), vendors={}) -> str    harness.protocols.vxlan.transcript
    ladder(path, keys_from=(), vendors={}) -> str        the ladder diagram, SVG

Nothing is encrypted, so key logs (--keys-from) have nothing to give and are not read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.protocols.vxlan.wire import GENEVE_PORTS, IPPROTO_UDP, VXLAN_PORTS

PROTOCOL = "vxlan"
PORTS = frozenset(VXLAN_PORTS + GENEVE_PORTS)


def claims(datagram) -> bool:
    return datagram.ip_proto == IPPROTO_UDP and (datagram.sport in PORTS or datagram.dport in PORTS)


def transcript(path: Path, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    from harness.protocols.vxlan.transcript import transcript as vxlan_transcript
    return vxlan_transcript(path)


def ladder(path: Path, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    from harness.protocols.vxlan.ladder import ladder as vxlan_ladder
    return vxlan_ladder(path, title=f"{PROTOCOL}: {Path(path).name}")
