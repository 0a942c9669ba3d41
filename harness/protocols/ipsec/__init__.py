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
    "pfs": "runs a key exchange (KE transform, KEi/KEr) in CREATE_CHILD_SA for a CHILD SA whose ESP proposal has a "
           "group (RFC 7296 1.3.1, 1.3.3)",
    "pfs_groups": "more than one KE group for a CHILD SA (RFC 7296 1.3): as initiator offers several and retries a "
                  "CREATE_CHILD_SA answered INVALID_KE_PAYLOAD with the group it names; as responder answers a KEi "
                  "of a group it does not want with INVALID_KE_PAYLOAD",
    "child_delete": "deletes a CHILD SA on request and keeps the IKE SA (IPsecEndpoint.close_child, RFC 7296 1.4.1)",
    "narrowing": "narrows proposed traffic selectors to its own as responder, and takes a narrowed answer as "
                 "initiator (RFC 7296 2.9)",
    "nat_t": "detects a NAT between the peers (NAT_DETECTION notifies), floats IKE to UDP 4500, UDP-encapsulates ESP "
             "and sends NAT-keepalives from behind the NAT at the interval asked (RFC 7296 2.23, RFC 3948)",
    "forced_encapsulation": "UDP-encapsulates ESP without a NAT when asked (RFC 7296 2.23)",
    "initial_contact": "forgets its IKE SA on request (IPsecEndpoint.forget) and, setting up the next with the same "
                       "peer, sends N(INITIAL_CONTACT); as responder deletes the old SAs it then holds (RFC 7296 2.4)",
    "rsa_pss": "signs with RSASSA-PSS in an RFC 7427 Digital Signature AUTH when asked (scenario.rsa_scheme pss)",
    "rsa_pkcs1": "signs with PKCS#1 v1.5 in an RFC 7427 Digital Signature AUTH when asked (rsa_scheme pkcs1)",
    "rsa_legacy": "sends no SIGNATURE_HASH_ALGORITHMS and signs with RFC 7296's RSA Digital Signature (method 1) "
                  "when asked (rsa_scheme legacy)",
    "ppk": "mixes a post-quantum preshared key into the IKE SA (RFC 8784: USE_PPK, PPK_IDENTITY, NO_PPK_AUTH), "
           "optional or required as asked",
    "additional_child": "adds a second CHILD SA to an IKE SA with CREATE_CHILD_SA on request "
                        "(IPsecEndpoint.initiate_additional, RFC 7296 1.3.1)",
    "identities": "identifies itself with an FQDN, IPv4, RFC 822 or DN ID matching its certificate, checks the "
                  "peer's, and sends no IDr when asked (scenario id_type, responder_peer_id, send_idr)",
    "transport_mode": "sets up a CHILD SA in transport mode (N(USE_TRANSPORT_MODE), RFC 7296 1.3.1)",
    "esn": "negotiates extended sequence numbers (ESN transform) and applies them in ESP (RFC 4303 2.2.1)",
    "dpd": "checks the peer's liveness on an idle IKE SA (empty INFORMATIONAL, RFC 7296 2.4) at the delay asked",
    "dpd_restart": "finds a dead peer by liveness checks on a CHILD SA and sets the tunnel up anew",
    "rsa": "authenticates with RSA certificates",
    "ecdsa": "authenticates with ECDSA certificates",
    "fragmentation": "fragments IKE messages (RFC 7383)",
    "cookies": "answers with a COOKIE when busy with half-open IKE SAs (RFC 7296 2.6)",
    "mlkem": "proposes and accepts ML-KEM-768 (FIPS 203) as an additional key exchange (RFC 9370) in "
             "IKE_INTERMEDIATE (RFC 9242)",
    "ikev1": "speaks IKEv1 (RFC 2409) site to site when a scenario asks (ike_version 1): phase 1 in Main Mode with a "
             "PSK or the certificates it declares, then Quick Mode for the IPsec SA between the subnets, with PFS "
             "where the ESP proposal has a group",
    "aggressive": "IKEv1 phase 1 in Aggressive Mode (RFC 2409 5.4) with a PSK (scenario aggressive)",
    "xauth": "IKEv1 XAUTH after phase 1 (draft-beaulieu-ike-xauth-02): as responder asks for and checks a user name "
             "and password, as initiator answers with the scenario's (remote_access)",
    "modecfg": "IKEv1 Mode Config (draft-dukes-ike-mode-cfg-02): as responder gives the initiator its inner address "
               "from a pool, as initiator takes it and sends from it through the IPsec SA (remote_access)",
    "key_export": "exports its IKE and ESP keys (IPsecEndpoint.ike_keys/esp_keys), so every capture it is in "
                  "decrypts; exporting none is then a broken cell, never a fallback to shape checks",
}
