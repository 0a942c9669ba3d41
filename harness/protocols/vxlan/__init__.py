"""VXLAN (RFC 7348) and Geneve (RFC 8926): the scenario model, the VTEP role interface vendors implement, the
wire reader, and the `vxlan_pair` fixture the suites use. A pair is symmetric: two VTEPs, neither initiates;
cases that need a third VTEP get a second instance of the second vendor."""
ROLES = ("vtep1", "vtep2")
# The harness's built-in probe plays vtep1 in the cases marked `probes` (frames built by frames.py, sent from a
# node of its own: fixtures.VxlanPair.inject): one cell per vendor playing vtep2, probe -> <vendor>.
PROBE_ROLE = "vtep1"

# Host capabilities (harness.host) a VTEP may need: the kernel's own tunnel devices.
HOST_CAPABILITIES = {
    "vxlan": {"meaning": "VXLAN devices",
              "probe": "succeeds ip link add probe-vx type vxlan id 42 dstport 4789 dev lo"},
    "geneve": {"meaning": "Geneve devices",
               "probe": "succeeds ip link add probe-gnv type geneve id 42 remote 198.18.255.2"},
}

# What a vendor may declare in vendor.toml (`features`, `gaps`) and a case may ask for (the `features` and
# `any_features` marks): nothing else is accepted, so a misspelt name is an error, never a silent skip.
FEATURES = {
    "vxlan": "a VXLAN tunnel endpoint (RFC 7348)",
    "geneve": "a Geneve tunnel endpoint (RFC 8926)",
    "geneve_options": "sends and receives Geneve options (RFC 8926 3.5)",
}
