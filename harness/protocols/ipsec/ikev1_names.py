"""The registries of ISAKMP and IKEv1 (RFC 2408, RFC 2409, the IPsec DOI of RFC 2407 and the IANA "Internet Security
Association and Key Management Protocol (ISAKMP) Identifiers" and "IPSEC" registries), plus what the drafts every
IKEv1 implementation still speaks added: NAT traversal (RFC 3947 and its drafts), XAUTH and Mode Config, Dead Peer
Detection (RFC 3706), Cisco Unity, IKE fragmentation, and the well-known Vendor IDs.

Names are the RFCs' and IANA's, so that an engineer finds them in the text: exchanges as RFC 2409 writes them
("Main Mode", "Aggressive Mode", "Quick Mode", "Informational"), notify types with hyphens as RFC 2408 3.14.1 does
("NO-PROPOSAL-CHOSEN"). Group Description values use the short names of the IKEv2 Key Exchange Method registry
("MODP_2048"): the two registries number the same groups alike, and a suite then speaks one vocabulary for both
versions.
"""
from __future__ import annotations

import hashlib

from harness.protocols.ipsec.ikev2_names import KEY_EXCHANGE_METHODS

# RFC 2408 3.1 and IANA "Exchange Type"; RFC 2409 5 and 5.5 name the IKE ones.
EXCHANGE_TYPES = {
    0: "NONE", 1: "Base", 2: "Main Mode", 3: "Authentication Only", 4: "Aggressive Mode", 5: "Informational",
    6: "Transaction",               # draft-ietf-ipsec-isakmp-mode-cfg: Mode Config and XAUTH
    32: "Quick Mode", 33: "New Group Mode",
}
MAIN_MODE, AGGRESSIVE_MODE, INFORMATIONAL, TRANSACTION, QUICK_MODE = 2, 4, 5, 6, 32

# RFC 2408 3.1 "Next Payload", RFC 3947 (NAT-D, NAT-OA), RFC 6407 (GDOI), the drafts' private numbers.
PAYLOAD_TYPES = {
    1: "SA", 2: "P", 3: "T", 4: "KE", 5: "ID", 6: "CERT", 7: "CR", 8: "HASH", 9: "SIG", 10: "Nonce", 11: "Notify",
    12: "Delete", 13: "VendorID",
    14: "Attributes",               # draft-ietf-ipsec-isakmp-mode-cfg-05 3.2: the Attribute Payload
    15: "SAK", 16: "SAT", 17: "KD", 18: "SEQ", 19: "POP",      # RFC 6407
    20: "NAT-D", 21: "NAT-OA",      # RFC 3947
    22: "GAP",                      # RFC 8263
    130: "NAT-D", 131: "NAT-OA",    # draft-ietf-ipsec-nat-t-ike-01 to -03, before RFC 3947 took 20 and 21
    132: "Fragment",                # IKE fragmentation (Cisco, also strongSwan and Libreswan)
}
DRAFT_NAT_PAYLOADS = frozenset({130, 131})

FLAG_ENCRYPTION, FLAG_COMMIT, FLAG_AUTHENTICATION_ONLY = 0x01, 0x02, 0x04   # RFC 2408 3.1

DOMAINS_OF_INTERPRETATION = {0: "ISAKMP", 1: "IPSEC", 2: "GDOI"}
IPSEC_DOI = 1
SITUATION_FLAGS = ["SIT_IDENTITY_ONLY", "SIT_SECRECY", "SIT_INTEGRITY"]   # RFC 2407 4.2, bit 0 first

# RFC 2407 4.4.1, "IPSEC Security Protocol Identifiers".
PROTOCOL_IDS = {1: "PROTO_ISAKMP", 2: "PROTO_IPSEC_AH", 3: "PROTO_IPSEC_ESP", 4: "PROTO_IPCOMP",
                5: "PROTO_GIGABEAM_RADIO"}
PROTO_ISAKMP, PROTO_IPSEC_AH, PROTO_IPSEC_ESP, PROTO_IPCOMP = 1, 2, 3, 4

# RFC 2407 4.4.2-4.4.5: transform identifiers, per protocol.
ISAKMP_TRANSFORM_IDS = {1: "KEY_IKE"}
AH_TRANSFORM_IDS = {2: "AH_MD5", 3: "AH_SHA", 4: "AH_DES", 5: "AH_SHA2-256", 6: "AH_SHA2-384", 7: "AH_SHA2-512",
                    8: "AH_RIPEMD", 9: "AH_AES-XCBC-MAC", 10: "AH_RSA", 11: "AH_AES-128-GMAC",
                    12: "AH_AES-192-GMAC", 13: "AH_AES-256-GMAC"}
ESP_TRANSFORM_IDS = {1: "ESP_DES_IV64", 2: "ESP_DES", 3: "ESP_3DES", 4: "ESP_RC5", 5: "ESP_IDEA", 6: "ESP_CAST",
                     7: "ESP_BLOWFISH", 8: "ESP_3IDEA", 9: "ESP_DES_IV32", 10: "ESP_RC4", 11: "ESP_NULL",
                     12: "ESP_AES-CBC", 13: "ESP_AES-CTR", 14: "ESP_AES-CCM_8", 15: "ESP_AES-CCM_12",
                     16: "ESP_AES-CCM_16", 18: "ESP_AES-GCM_8", 19: "ESP_AES-GCM_12", 20: "ESP_AES-GCM_16",
                     21: "ESP_SEED_CBC", 22: "ESP_CAMELLIA", 23: "ESP_NULL_AUTH_AES-GMAC"}
IPCOMP_TRANSFORM_IDS = {1: "IPCOMP_OUI", 2: "IPCOMP_DEFLATE", 3: "IPCOMP_LZS", 4: "IPCOMP_LZJH"}
TRANSFORM_IDS = {PROTO_ISAKMP: ISAKMP_TRANSFORM_IDS, PROTO_IPSEC_AH: AH_TRANSFORM_IDS,
                 PROTO_IPSEC_ESP: ESP_TRANSFORM_IDS, PROTO_IPCOMP: IPCOMP_TRANSFORM_IDS}

# RFC 2409 Appendix A: the phase 1 (IKE SA) attributes and their values.
IKE_ATTRIBUTES = {
    1: "Encryption Algorithm", 2: "Hash Algorithm", 3: "Authentication Method", 4: "Group Description",
    5: "Group Type", 6: "Group Prime/Irreducible Polynomial", 7: "Group Generator One", 8: "Group Generator Two",
    9: "Group Curve A", 10: "Group Curve B", 11: "Life Type", 12: "Life Duration", 13: "PRF", 14: "Key Length",
    15: "Field Size", 16: "Group Order",
}
IKE_ENCRYPTION_ALGORITHMS = {1: "DES-CBC", 2: "IDEA-CBC", 3: "Blowfish-CBC", 4: "RC5-R16-B64-CBC", 5: "3DES-CBC",
                             6: "CAST-CBC", 7: "AES-CBC", 8: "CAMELLIA-CBC"}
IKE_HASH_ALGORITHMS = {1: "MD5", 2: "SHA", 3: "Tiger", 4: "SHA2-256", 5: "SHA2-384", 6: "SHA2-512"}
IKE_AUTHENTICATION_METHODS = {
    1: "pre-shared key", 2: "DSS signatures", 3: "RSA signatures", 4: "Encryption with RSA",
    5: "Revised encryption with RSA", 9: "ECDSA with SHA-256 on the P-256 curve",   # RFC 4754
    10: "ECDSA with SHA-384 on the P-384 curve", 11: "ECDSA with SHA-512 on the P-521 curve",
    # draft-ietf-ipsec-isakmp-hybrid-auth and draft-beaulieu-ike-xauth (private use)
    64221: "HybridInitRSA", 64222: "HybridRespRSA", 64223: "HybridInitDSS", 64224: "HybridRespDSS",
    65001: "XAUTHInitPreShared", 65002: "XAUTHRespPreShared", 65003: "XAUTHInitDSS", 65004: "XAUTHRespDSS",
    65005: "XAUTHInitRSA", 65006: "XAUTHRespRSA", 65007: "XAUTHInitRSAEncryption", 65008: "XAUTHRespRSAEncryption",
    65009: "XAUTHInitRSARevisedEncryption", 65010: "XAUTHRespRSARevisedEncryption",
}
GROUP_TYPES = {1: "MODP", 2: "ECP", 3: "EC2N"}
LIFE_TYPES = {1: "seconds", 2: "kilobytes"}
IKE_ATTRIBUTE_VALUES = {1: IKE_ENCRYPTION_ALGORITHMS, 2: IKE_HASH_ALGORITHMS, 3: IKE_AUTHENTICATION_METHODS,
                        4: KEY_EXCHANGE_METHODS, 5: GROUP_TYPES, 11: LIFE_TYPES}
ENCRYPTION_ALGORITHM, HASH_ALGORITHM, GROUP_DESCRIPTION, KEY_LENGTH = 1, 2, 4, 14

# RFC 2407 4.5, "IPSEC Security Association Attributes": the phase 2 (Quick Mode) attributes.
IPSEC_ATTRIBUTES = {
    1: "SA Life Type", 2: "SA Life Duration", 3: "Group Description", 4: "Encapsulation Mode",
    5: "Authentication Algorithm", 6: "Key Length", 7: "Key Rounds", 8: "Compress Dictionary Size",
    9: "Compress Private Algorithm", 10: "ECN Tunnel", 11: "Extended (64-bit) Sequence Number",
    12: "Authentication Key Length", 13: "Signature Encoding Algorithm", 14: "Address Preservation",
    15: "SA Direction",
}
ENCAPSULATION_MODES = {
    1: "Tunnel", 2: "Transport",
    3: "UDP-Encapsulated-Tunnel", 4: "UDP-Encapsulated-Transport",                # RFC 3947
    61443: "UDP-Encapsulated-Tunnel (draft)", 61444: "UDP-Encapsulated-Transport (draft)",  # the NAT-T drafts
}
IPSEC_AUTHENTICATION_ALGORITHMS = {
    1: "HMAC-MD5", 2: "HMAC-SHA", 3: "DES-MAC", 4: "KPDK", 5: "HMAC-SHA2-256", 6: "HMAC-SHA2-384",
    7: "HMAC-SHA2-512", 8: "HMAC-RIPEMD", 9: "AES-XCBC-MAC", 10: "SIG-RSA", 11: "AES-128-GMAC", 12: "AES-192-GMAC",
    13: "AES-256-GMAC",
}
IPSEC_ATTRIBUTE_VALUES = {1: LIFE_TYPES, 3: KEY_EXCHANGE_METHODS, 4: ENCAPSULATION_MODES,
                          5: IPSEC_AUTHENTICATION_ALGORITHMS, 10: {1: "Allowed", 2: "Forbidden"},
                          11: {1: "64-bit Sequence Number"}, 14: {0: "None", 1: "Address-Only", 2: "Port-Only",
                                                                   3: "Address-and-Port"},
                          15: {1: "Sender-Only", 2: "Receiver-Only", 3: "Symmetric"}}

# RFC 2407 4.6.2.1, "IPSEC Identification Type".
ID_TYPES = {1: "ID_IPV4_ADDR", 2: "ID_FQDN", 3: "ID_USER_FQDN", 4: "ID_IPV4_ADDR_SUBNET", 5: "ID_IPV6_ADDR",
            6: "ID_IPV6_ADDR_SUBNET", 7: "ID_IPV4_ADDR_RANGE", 8: "ID_IPV6_ADDR_RANGE", 9: "ID_DER_ASN1_DN",
            10: "ID_DER_ASN1_GN", 11: "ID_KEY_ID", 12: "ID_LIST"}

# RFC 2408 3.9, "Certificate Encoding".
CERT_ENCODINGS = {0: "NONE", 1: "PKCS #7 wrapped X.509 certificate", 2: "PGP Certificate", 3: "DNS Signed Key",
                  4: "X.509 Certificate - Signature", 5: "X.509 Certificate - Key Exchange", 6: "Kerberos Tokens",
                  7: "Certificate Revocation List (CRL)", 8: "Authority Revocation List (ARL)",
                  9: "SPKI Certificate", 10: "X.509 Certificate - Attribute", 11: "Raw RSA Key",   # RFC 4945
                  12: "Hash and URL of X.509 certificate", 13: "Hash and URL of X.509 bundle"}

# RFC 2408 3.14.1 (errors below 8192, status from 16384), RFC 2407 4.6.3 (the IPsec DOI's), RFC 3706 (DPD).
NOTIFY_TYPES = {
    1: "INVALID-PAYLOAD-TYPE", 2: "DOI-NOT-SUPPORTED", 3: "SITUATION-NOT-SUPPORTED", 4: "INVALID-COOKIE",
    5: "INVALID-MAJOR-VERSION", 6: "INVALID-MINOR-VERSION", 7: "INVALID-EXCHANGE-TYPE", 8: "INVALID-FLAGS",
    9: "INVALID-MESSAGE-ID", 10: "INVALID-PROTOCOL-ID", 11: "INVALID-SPI", 12: "INVALID-TRANSFORM-ID",
    13: "ATTRIBUTES-NOT-SUPPORTED", 14: "NO-PROPOSAL-CHOSEN", 15: "BAD-PROPOSAL-SYNTAX", 16: "PAYLOAD-MALFORMED",
    17: "INVALID-KEY-INFORMATION", 18: "INVALID-ID-INFORMATION", 19: "INVALID-CERT-ENCODING",
    20: "INVALID-CERTIFICATE", 21: "CERT-TYPE-UNSUPPORTED", 22: "INVALID-CERT-AUTHORITY",
    23: "INVALID-HASH-INFORMATION", 24: "AUTHENTICATION-FAILED", 25: "INVALID-SIGNATURE",
    26: "ADDRESS-NOTIFICATION", 27: "NOTIFY-SA-LIFETIME", 28: "CERTIFICATE-UNAVAILABLE",
    29: "UNSUPPORTED-EXCHANGE-TYPE", 30: "UNEQUAL-PAYLOAD-LENGTHS",
    16384: "CONNECTED",
    24576: "RESPONDER-LIFETIME", 24577: "REPLAY-STATUS", 24578: "INITIAL-CONTACT",
    36136: "R-U-THERE", 36137: "R-U-THERE-ACK",
}
FIRST_STATUS_NOTIFY = 16384     # RFC 2408 3.14.1: 1-16383 are errors (8192-16383 private ones)
RESPONDER_LIFETIME, R_U_THERE, R_U_THERE_ACK = 24576, 36136, 36137

# draft-ietf-ipsec-isakmp-mode-cfg-05 3.2 and 3.3: the Attribute payload, and the attributes of Mode Config,
# XAUTH (draft-beaulieu-ike-xauth-02 6.1) and Cisco Unity (private use).
CFG_TYPES = {1: "ISAKMP_CFG_REQUEST", 2: "ISAKMP_CFG_REPLY", 3: "ISAKMP_CFG_SET", 4: "ISAKMP_CFG_ACK"}
CFG_ATTRIBUTES = {
    1: "INTERNAL_IP4_ADDRESS", 2: "INTERNAL_IP4_NETMASK", 3: "INTERNAL_IP4_DNS", 4: "INTERNAL_IP4_NBNS",
    5: "INTERNAL_ADDRESS_EXPIRY", 6: "INTERNAL_IP4_DHCP", 7: "APPLICATION_VERSION", 8: "INTERNAL_IP6_ADDRESS",
    9: "INTERNAL_IP6_NETMASK", 10: "INTERNAL_IP6_DNS", 11: "INTERNAL_IP6_NBNS", 12: "INTERNAL_IP6_DHCP",
    13: "INTERNAL_IP4_SUBNET", 14: "SUPPORTED_ATTRIBUTES", 15: "INTERNAL_IP6_SUBNET",
    16520: "XAUTH_TYPE", 16521: "XAUTH_USER_NAME", 16522: "XAUTH_USER_PASSWORD", 16523: "XAUTH_PASSCODE",
    16524: "XAUTH_MESSAGE", 16525: "XAUTH_CHALLENGE", 16526: "XAUTH_DOMAIN", 16527: "XAUTH_STATUS",
    16528: "XAUTH_NEXT_PIN", 16529: "XAUTH_ANSWER",
    28672: "UNITY_BANNER", 28673: "UNITY_SAVE_PASSWD", 28674: "UNITY_DEF_DOMAIN", 28675: "UNITY_SPLIT_DNS_NAME",
    28676: "UNITY_SPLIT_INCLUDE", 28677: "UNITY_NATT_PORT", 28678: "UNITY_LOCAL_LAN", 28679: "UNITY_PFS",
    28680: "UNITY_FW_TYPE", 28681: "UNITY_BACKUP_SERVERS", 28682: "UNITY_DDNS_HOSTNAME",
}
CFG_ATTRIBUTE_VALUES = {16520: {0: "Generic", 1: "RADIUS-CHAP", 2: "OTP", 3: "S/KEY"},
                        16527: {0: "FAIL", 1: "OK"}}
CFG_ADDRESSES = frozenset({1, 2, 3, 4, 6, 8, 9, 10, 11, 12})
CFG_TEXT = frozenset({7, 16521, 16522, 16523, 16524, 16525, 16526, 16528, 16529, 28672, 28674, 28675, 28682})


def _md5(text: str, length: int = 16) -> bytes:
    return hashlib.md5(text.encode()).digest()[:length]


# Vendor IDs, matched by prefix (the longest wins): most are an MD5 hash of a string the RFC or draft gives, some
# followed by a version. What an engineer looks for first is here: NAT-T (which method), DPD, XAUTH, Unity,
# fragmentation, and which implementation is on the other side.
VENDOR_IDS: tuple[tuple[str, bytes], ...] = (
    ("RFC 3947 Negotiation of NAT-Traversal in the IKE", _md5("RFC 3947")),
    *((f"draft-ietf-ipsec-nat-t-ike-0{n}", _md5(f"draft-ietf-ipsec-nat-t-ike-0{n}")) for n in range(9)),
    ("draft-ietf-ipsec-nat-t-ike-02\\n", _md5("draft-ietf-ipsec-nat-t-ike-02\n")),
    ("draft-ietf-ipsec-nat-t-ike", _md5("draft-ietf-ipsec-nat-t-ike")),
    ("draft-huttunen-ipsec-esp-in-udp-00.txt", _md5("draft-huttunen-ipsec-esp-in-udp-00.txt")),
    ("ESPThruNAT", _md5("ESPThruNAT")),
    ("RFC 3706 DPD (Dead Peer Detection)", bytes.fromhex("afcad71368a1f1c96b8696fc77570100")),
    ("XAUTH", _md5("draft-ietf-ipsra-isakmp-xauth-06.txt", 8)),    # draft-beaulieu-ike-xauth-02
    ("CISCO-UNITY", _md5("CISCO-UNITY", 14)),
    ("Cisco Fragmentation", _md5("FRAGMENTATION")),
    ("Cisco VPN 3000 Series", bytes.fromhex("1f07f70eaa6514d3b0fa96542a50")),
    ("Cisco IOS", bytes.fromhex("3e984048")),
    ("CISCO-DELETE-REASON", b"CISCO-DELETE-REASON"),
    ("FLEXVPN-SUPPORTED", b"FLEXVPN-SUPPORTED"),
    ("strongSwan", _md5("strongSwan")),
    ("Libreswan", b"OE-Libreswan-"),
    ("Libreswan (old)", b"OEN"),
    ("Openswan", b"OE"),
    ("Libreswan/Openswan: CAN-IKEv2", b"IKEv2"),
    ("Opportunistic IPsec", b"Opportunistic IPsec"),
    ("KAME/racoon", _md5("KAME/racoon")),
    ("MS NT5 ISAKMPOAKLEY", _md5("MS NT5 ISAKMPOAKLEY")),
    ("MS-Negotiation Discovery Capable", _md5("MS-Negotiation Discovery Capable")),
    ("IKE CGA Version 1", _md5("IKE CGA version 1")),
    ("MS-MamieExists", _md5("MS-MamieExists")),
    ("Microsoft Vid-Initial-Contact", _md5("Vid-Initial-Contact")),
    ("GSSAPI", _md5("GSSAPI")),
    ("A GSS-API Authentication Method for IKE", _md5("A GSS-API Authentication Method for IKE")),
    ("Shrew Soft", bytes.fromhex("f14b94b7bff1fef02773b8c49feded26")),
    ("NCP client", bytes.fromhex("101fb0b35c5a4f4c08b919f1cb9777b0")),
    ("HeartBeat_Notify", b"HeartBeat_Notify"),
    ("Timestep", b"TIMESTEP"),
    ("OpenPGP", b"OpenPGP"),
    ("Check Point", bytes.fromhex("f4ed19e0c114eb516faaac0ee37daf2807b4381f")),
)


def vendor_name(vid: bytes) -> str | None:
    """The well-known Vendor ID `vid` starts with (the longest match), or None."""
    best = None
    for name, prefix in VENDOR_IDS:
        if vid.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
            best = (name, prefix)
    return best[0] if best else None
