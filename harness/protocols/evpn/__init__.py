"""BGP EVPN for VXLAN (RFC 7432, RFC 8365): the control plane of the vxlan package's data plane. See docs/evpn.md."""
