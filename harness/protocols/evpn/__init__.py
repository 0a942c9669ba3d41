"""BGP EVPN for VXLAN (RFC 7432, RFC 8365): the control plane of the vxlan package's data plane (docs/evpn.md).

Each VTEP is a BGP speaker that advertises its VNIs (type 3: the flood list), the MACs behind it (type 2) and
prefixes (type 5), and builds the kernel's VXLAN forwarding from what its peers advertise. Inner hosts are
containers of their own, one per VTEP and segment, cabled to their VTEP's bridge (fixtures.py). A pair is
symmetric; cases that need a third VTEP get a second instance of the second vendor, as in the vxlan package.
"""
ROLES = ("vtep1", "vtep2")

# Host capabilities: the vxlan package's `vxlan` (VXLAN devices) is the one an EVPN VTEP's data plane needs.

FEATURES = {
    "evpn": "a BGP EVPN speaker (RFC 7432) for VXLAN (RFC 8365): types 2 and 3, ingress replication",
    "data_plane": "a VXLAN data plane programmed from the routes it learns (its own kernel VTEP)",
    "arp_suppression": "answers ARP for remote hosts from type-2 MAC+IP routes (RFC 7432 10)",
    "type5": "advertises and imports type-5 IP prefix routes (RFC 9136) in the default VRF, with an L3 VNI",
    "auto_rt": "derives route targets from the AS and VNI (RFC 8365 5.1.2.1)",
    "mac_mobility": "MAC mobility sequence numbers (RFC 7432 15)",
    "probes": "sends the BGP messages a case builds, as built (roles.RouteSender): the robustness cases",
}
