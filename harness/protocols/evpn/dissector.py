"""BGP EVPN for `overlay-interop transcript`: the BGP sessions of a capture (TCP 179, the dispatch table's row),
every message in order, EVPN routes with their VNIs (harness.protocols.evpn.transcript). The VXLAN frames of the
same capture are the vxlan dissector's. Nothing is encrypted: key logs have nothing to give."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.protocols.dispatch import owner

PROTOCOL = "evpn"


def claims(datagram) -> bool:
    return owner(datagram) == PROTOCOL


def transcript(capture, keys_from: Sequence[Path] = (), vendors: Mapping = {}) -> str:
    """`capture`: a harness.packets.Capture already read, or a capture's path."""
    from harness.protocols.evpn.transcript import transcript as evpn_transcript
    from harness.protocols.evpn.wire import Wire
    return evpn_transcript(Wire.from_pcap(capture))
