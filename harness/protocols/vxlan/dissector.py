"""VXLAN and Geneve for `overlay-interop transcript`: which frames are overlay traffic, and the transcript (and
ladder) of a capture a user has.

The command (harness.transcript_cli) finds this module by name, as it finds any protocol's `dissector`; which
datagrams are overlay traffic (UDP 4789 and 8472: VXLAN, 4790: VXLAN-GPE, 6081: Geneve) the dispatch table says
(harness.protocols.dispatch):

    transcript(capture, keys_from=(), vendors={}) -> str  harness.protocols.vxlan.transcript
    ladder(capture, keys_from=(), vendors={}) -> str      the ladder diagram, SVG

Nothing is encrypted, so key logs (--keys-from) have nothing to give and are not read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.protocols.dispatch import owner

PROTOCOL = "vxlan"


def claims(datagram) -> bool:
    """What the dispatch table gives this protocol."""
    return owner(datagram) == PROTOCOL


def transcript(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    """`capture`: a harness.packets.Capture already read, or a capture's path."""
    from harness.protocols.vxlan.transcript import transcript as vxlan_transcript
    return vxlan_transcript(capture)


def ladder(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    from harness.protocols.vxlan.ladder import ladder as vxlan_ladder
    return vxlan_ladder(capture, title=f"{PROTOCOL}: {Path(getattr(capture, 'name', capture)).name}")
