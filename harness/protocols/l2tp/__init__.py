"""L2TPv2 (RFC 2661): the control and data message codec (`codec`: header, `avp`: the AVPs, hiding and tunnel
authentication). A pair is a LAC, which places the call and sends SCCRQ, and an LNS, which answers it."""
ROLES = ("lac", "lns")
