"""IPsec (IKEv2 + ESP): the scenario model, the role interface vendors implement, the wire reader, and the
`ipsec_pair` fixture the suites use."""
ROLES = ("initiator", "responder")
# The harness's built-in probe plays the initiator in the cases marked `probes` (IKE_SA_INIT requests built by
# probe.py, sent from a node of its own: fixtures.IPsecProbe): one cell per responder, probe -> <vendor>.
PROBE_ROLE = "initiator"

# Host capabilities (harness.host) an IPsec vendor may need: its probe adds an ESP SA in a namespace of its own.
HOST_CAPABILITIES = {
    "kernel-esp": {"meaning": "ESP in the kernel's XFRM",
                   "probe": "succeeds ip xfrm state add src 198.18.255.1 dst 198.18.255.2 proto esp spi 0x100 "
                            "mode tunnel enc 'cbc(aes)' 0x00112233445566778899aabbccddeeff auth-trunc 'hmac(sha256)' "
                            "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 128"},
}

# What a vendor may declare in vendor.toml (`features`, `gaps`) and a case may ask for (the `features` and
# `any_features` marks): nothing else is accepted, so a misspelt name is an error, never a silent skip.
FEATURES = {
    "psk": "authenticates with a pre-shared key (RFC 7296 2.15)",
    "child_sa": "sets up a CHILD SA in IKE_AUTH and carries traffic through it (ESP)",
    "childless": "sets up an IKE SA without a CHILD SA (RFC 6023)",
    "rekey": "rekeys IKE and CHILD SAs with CREATE_CHILD_SA on the timers a case asks for (RFC 7296 1.3.2, 2.8)",
    "dpd": "checks the peer's liveness on an idle IKE SA (empty INFORMATIONAL, RFC 7296 2.4) at the delay asked",
    "dpd_restart": "finds a dead peer by liveness checks on a CHILD SA and sets the tunnel up anew",
    "rsa": "authenticates with RSA certificates",
    "ecdsa": "authenticates with ECDSA certificates",
    "fragmentation": "fragments IKE messages (RFC 7383)",
    "cookies": "answers with a COOKIE when busy with half-open IKE SAs (RFC 7296 2.6)",
    "mlkem": "proposes and accepts ML-KEM-768 (FIPS 203) as an additional key exchange (RFC 9370) in "
             "IKE_INTERMEDIATE (RFC 9242)",
    "key_export": "exports its IKE and ESP keys (IPsecEndpoint.ike_keys/esp_keys), so every capture it is in "
                  "decrypts; exporting none is then a broken cell, never a fallback to shape checks",
}
