"""VXLAN (RFC 7348) and Geneve (RFC 8926): the scenario model, the VTEP role interface vendors implement, the
wire reader, and the `vxlan_pair` fixture the suites use. A pair is symmetric: two VTEPs, neither initiates;
cases that need a third VTEP get a second instance of the second vendor."""
ROLES = ("vtep1", "vtep2")
