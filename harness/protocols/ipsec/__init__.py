"""IPsec (IKEv2 + ESP): the scenario model, the role interface vendors implement, the wire reader, and the
`ipsec_pair` fixture the suites use."""
ROLES = ("initiator", "responder")
