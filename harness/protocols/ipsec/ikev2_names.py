"""The IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries (RFC 7296 and its extensions): exchange,
payload and notify types, transforms, identities, authentication methods, traffic selectors, configuration
attributes, and what typed notify data name (hash algorithms, PPK identities, gateway identities).

Transform names follow the scenario's vocabulary (keys.py, scenario.py): an encryption transform with a key-length
attribute is named with its size appended ("ENCR_AES_CBC_128").
"""
from __future__ import annotations

# RFC 7296 3.1 and the IANA "IKEv2 Exchange Types" registry.
EXCHANGE_TYPES = {
    34: "IKE_SA_INIT",
    35: "IKE_AUTH",
    36: "CREATE_CHILD_SA",
    37: "INFORMATIONAL",
    38: "IKE_SESSION_RESUME",          # RFC 5723
    43: "IKE_INTERMEDIATE",            # RFC 9242
    44: "IKE_FOLLOWUP_KE",             # RFC 9370
}

# RFC 7296 3.2 and the IANA "IKEv2 Payload Types" registry. Names are single words so a transcript line
# can be split on spaces.
PAYLOAD_TYPES = {
    33: "SA",
    34: "KE",
    35: "IDi",
    36: "IDr",
    37: "CERT",
    38: "CERTREQ",
    39: "AUTH",
    40: "Nonce",
    41: "Notify",
    42: "Delete",
    43: "VendorID",
    44: "TSi",
    45: "TSr",
    46: "Encrypted",                   # SK
    47: "CP",
    48: "EAP",
    49: "GSPM",                        # RFC 6467
    50: "IDg",                         # G-IKEv2
    51: "GSA",
    52: "KD",
    53: "EncryptedFragment",           # SKF, RFC 7383
    54: "PS",                          # RFC 8019
}
NOTIFY_PAYLOAD, SK_PAYLOAD, SKF_PAYLOAD = 41, 46, 53
# SK and SKF are always last; the next-payload field in their header names the first payload *inside* the
# ciphertext, so the chain in the clear ends with them.
ENCRYPTED_PAYLOADS = frozenset({SK_PAYLOAD, SKF_PAYLOAD})
FIRST_STATUS_NOTIFY = 16384            # RFC 7296 3.10.1: types below this are errors

# The IANA "IKEv2 Notify Message Types" registry (RFC 7296 3.10.1 and its extensions).
NOTIFY_TYPES = {
    # Error types
    1: "UNSUPPORTED_CRITICAL_PAYLOAD",
    4: "INVALID_IKE_SPI",
    5: "INVALID_MAJOR_VERSION",
    7: "INVALID_SYNTAX",
    9: "INVALID_MESSAGE_ID",
    11: "INVALID_SPI",
    14: "NO_PROPOSAL_CHOSEN",
    17: "INVALID_KE_PAYLOAD",
    24: "AUTHENTICATION_FAILED",
    34: "SINGLE_PAIR_REQUIRED",
    35: "NO_ADDITIONAL_SAS",
    36: "INTERNAL_ADDRESS_FAILURE",
    37: "FAILED_CP_REQUIRED",
    38: "TS_UNACCEPTABLE",
    39: "INVALID_SELECTORS",
    40: "UNACCEPTABLE_ADDRESSES",          # RFC 4555
    41: "UNEXPECTED_NAT_DETECTED",         # RFC 4555
    42: "USE_ASSIGNED_HoA",                # RFC 5026
    43: "TEMPORARY_FAILURE",
    44: "CHILD_SA_NOT_FOUND",
    45: "INVALID_GROUP_ID",                # RFC 6407
    46: "AUTHORIZATION_FAILED",            # RFC 6407
    47: "STATE_NOT_FOUND",                 # RFC 9370
    48: "TS_MAX_QUEUE",                    # RFC 9611
    # Status types
    16384: "INITIAL_CONTACT",
    16385: "SET_WINDOW_SIZE",
    16386: "ADDITIONAL_TS_POSSIBLE",
    16387: "IPCOMP_SUPPORTED",
    16388: "NAT_DETECTION_SOURCE_IP",
    16389: "NAT_DETECTION_DESTINATION_IP",
    16390: "COOKIE",
    16391: "USE_TRANSPORT_MODE",
    16392: "HTTP_CERT_LOOKUP_SUPPORTED",
    16393: "REKEY_SA",
    16394: "ESP_TFC_PADDING_NOT_SUPPORTED",
    16395: "NON_FIRST_FRAGMENTS_ALSO",
    16396: "MOBIKE_SUPPORTED",             # RFC 4555
    16397: "ADDITIONAL_IP4_ADDRESS",
    16398: "ADDITIONAL_IP6_ADDRESS",
    16399: "NO_ADDITIONAL_ADDRESSES",
    16400: "UPDATE_SA_ADDRESSES",
    16401: "COOKIE2",
    16402: "NO_NATS_ALLOWED",
    16403: "AUTH_LIFETIME",                # RFC 4478
    16404: "MULTIPLE_AUTH_SUPPORTED",      # RFC 4739
    16405: "ANOTHER_AUTH_FOLLOWS",
    16406: "REDIRECT_SUPPORTED",           # RFC 5685
    16407: "REDIRECT",
    16408: "REDIRECTED_FROM",
    16409: "TICKET_LT_OPAQUE",             # RFC 5723
    16410: "TICKET_REQUEST",
    16411: "TICKET_ACK",
    16412: "TICKET_NACK",
    16413: "TICKET_OPAQUE",
    16414: "LINK_ID",                      # RFC 5739
    16415: "USE_WESP_MODE",                # RFC 5840
    16416: "ROHC_SUPPORTED",               # RFC 5857
    16417: "EAP_ONLY_AUTHENTICATION",      # RFC 5998
    16418: "CHILDLESS_IKEV2_SUPPORTED",    # RFC 6023
    16419: "QUICK_CRASH_DETECTION",        # RFC 6290
    16420: "IKEV2_MESSAGE_ID_SYNC_SUPPORTED",  # RFC 6311
    16421: "IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED",
    16422: "IKEV2_MESSAGE_ID_SYNC",
    16423: "IPSEC_REPLAY_COUNTER_SYNC",
    16424: "SECURE_PASSWORD_METHODS",      # RFC 6467
    16425: "PSK_PERSIST",                  # RFC 6631
    16426: "PSK_CONFIRM",
    16427: "ERX_SUPPORTED",                # RFC 6867
    16428: "IFOM_CAPABILITY",
    16429: "SENDER_REQUEST_ID",            # G-IKEv2
    16430: "IKEV2_FRAGMENTATION_SUPPORTED",  # RFC 7383
    16431: "SIGNATURE_HASH_ALGORITHMS",    # RFC 7427
    16432: "CLONE_IKE_SA_SUPPORTED",       # RFC 7791
    16433: "CLONE_IKE_SA",
    16434: "PUZZLE",                       # RFC 8019
    16435: "USE_PPK",                      # RFC 8784
    16436: "PPK_IDENTITY",
    16437: "NO_PPK_AUTH",
    16438: "INTERMEDIATE_EXCHANGE_SUPPORTED",  # RFC 9242
    16439: "IP4_ALLOWED",                  # RFC 8983
    16440: "IP6_ALLOWED",
    16441: "ADDITIONAL_KEY_EXCHANGE",      # RFC 9370
    16442: "USE_AGGFRAG",                  # RFC 9347
    16443: "SUPPORTED_AUTH_METHODS",       # RFC 9593
    16444: "SA_RESOURCE_INFO",             # RFC 9611
}

# RFC 7296 3.3.1: protocol IDs in a proposal, a Notify and a Delete payload.
PROTOCOL_IDS = {1: "IKE", 2: "AH", 3: "ESP"}

# RFC 7296 3.3.2 and RFC 9370 (additional key exchanges).
TRANSFORM_TYPES = {
    1: "ENCR", 2: "PRF", 3: "INTEG", 4: "KE", 5: "ESN",
    6: "ADDKE1", 7: "ADDKE2", 8: "ADDKE3", 9: "ADDKE4", 10: "ADDKE5", 11: "ADDKE6", 12: "ADDKE7",
}
ENCR, PRF, INTEG, KE, ESN = 1, 2, 3, 4, 5
KEY_LENGTH_ATTRIBUTE = 14   # RFC 7296 3.3.5, the only transform attribute defined

ENCRYPTION_TRANSFORMS = {
    1: "ENCR_DES_IV64", 2: "ENCR_DES", 3: "ENCR_3DES", 4: "ENCR_RC5", 5: "ENCR_IDEA", 6: "ENCR_CAST",
    7: "ENCR_BLOWFISH", 8: "ENCR_3IDEA", 9: "ENCR_DES_IV32", 11: "ENCR_NULL", 12: "ENCR_AES_CBC",
    13: "ENCR_AES_CTR", 14: "ENCR_AES_CCM_8", 15: "ENCR_AES_CCM_12", 16: "ENCR_AES_CCM_16",
    18: "ENCR_AES_GCM_8", 19: "ENCR_AES_GCM_12", 20: "ENCR_AES_GCM_16", 21: "ENCR_NULL_AUTH_AES_GMAC",
    23: "ENCR_CAMELLIA_CBC", 24: "ENCR_CAMELLIA_CTR", 25: "ENCR_CAMELLIA_CCM_8", 26: "ENCR_CAMELLIA_CCM_12",
    27: "ENCR_CAMELLIA_CCM_16", 28: "ENCR_CHACHA20_POLY1305", 32: "ENCR_AES_CCM_8_IIV",
    33: "ENCR_AES_GCM_16_IIV", 34: "ENCR_CHACHA20_POLY1305_IIV", 35: "ENCR_KUZNYECHIK_MGM_KTREE",
    36: "ENCR_MAGMA_MGM_KTREE", 37: "ENCR_KUZNYECHIK_MGM_MAC_KTREE", 38: "ENCR_MAGMA_MGM_MAC_KTREE",
}
PRF_TRANSFORMS = {
    1: "PRF_HMAC_MD5", 2: "PRF_HMAC_SHA1", 3: "PRF_HMAC_TIGER", 4: "PRF_AES128_XCBC", 5: "PRF_HMAC_SHA2_256",
    6: "PRF_HMAC_SHA2_384", 7: "PRF_HMAC_SHA2_512", 8: "PRF_AES128_CMAC", 9: "PRF_HMAC_STREEBOG_512",
}
INTEGRITY_TRANSFORMS = {
    0: "NONE", 1: "AUTH_HMAC_MD5_96", 2: "AUTH_HMAC_SHA1_96", 3: "AUTH_DES_MAC", 4: "AUTH_KPDK_MD5",
    5: "AUTH_AES_XCBC_96", 6: "AUTH_HMAC_MD5_128", 7: "AUTH_HMAC_SHA1_160", 8: "AUTH_AES_CMAC_96",
    9: "AUTH_AES_128_GMAC", 10: "AUTH_AES_192_GMAC", 11: "AUTH_AES_256_GMAC", 12: "AUTH_HMAC_SHA2_256_128",
    13: "AUTH_HMAC_SHA2_384_192", 14: "AUTH_HMAC_SHA2_512_256",
}
# "Key Exchange Method Transform IDs" (formerly Diffie-Hellman groups); also the group in a KE payload.
KEY_EXCHANGE_METHODS = {
    0: "NONE", 1: "MODP_768", 2: "MODP_1024", 5: "MODP_1536", 14: "MODP_2048", 15: "MODP_3072",
    16: "MODP_4096", 17: "MODP_6144", 18: "MODP_8192", 19: "ECP_256", 20: "ECP_384", 21: "ECP_521",
    22: "MODP_1024_160", 23: "MODP_2048_224", 24: "MODP_2048_256", 25: "ECP_192", 26: "ECP_224",
    27: "BRAINPOOLP224R1", 28: "BRAINPOOLP256R1", 29: "BRAINPOOLP384R1", 30: "BRAINPOOLP512R1",
    31: "CURVE25519", 32: "CURVE448", 33: "GOST3410_2012_256", 34: "GOST3410_2012_512",
    35: "ML_KEM_512", 36: "ML_KEM_768", 37: "ML_KEM_1024",
}
ESN_TRANSFORMS = {0: "NO_ESN", 1: "ESN"}

TRANSFORM_IDS = {ENCR: ENCRYPTION_TRANSFORMS, PRF: PRF_TRANSFORMS, INTEG: INTEGRITY_TRANSFORMS,
                 KE: KEY_EXCHANGE_METHODS, ESN: ESN_TRANSFORMS,
                 **{additional: KEY_EXCHANGE_METHODS for additional in range(6, 13)}}

# RFC 7296 3.5, "IKEv2 Identification Payload ID Types"; shown without the "ID_" prefix.
ID_TYPES = {
    1: "IPv4", 2: "FQDN", 3: "RFC822", 5: "IPv6", 9: "DER_ASN1_DN", 10: "DER_ASN1_GN", 11: "KEY_ID",
    12: "FC_NAME", 13: "NULL",
}
ID_IPV4_ADDR, ID_FQDN, ID_RFC822_ADDR, ID_IPV6_ADDR, ID_NULL = 1, 2, 3, 5, 13

# RFC 7296 3.6, "IKEv2 Certificate Encodings".
CERT_ENCODINGS = {
    1: "PKCS7", 2: "PGP", 3: "DNS-signed-key", 4: "X.509", 6: "Kerberos", 7: "CRL", 8: "ARL", 9: "SPKI",
    10: "X.509-attribute", 11: "raw-RSA-key", 12: "hash-and-URL-X.509", 13: "hash-and-URL-bundle",
    14: "OCSP-content", 15: "raw-public-key",
}
CERT_X509_SIGNATURE = 4

# RFC 7296 3.8, "IKEv2 Authentication Method".
AUTH_METHODS = {
    1: "RSA-signature", 2: "shared-key", 3: "DSS-signature", 9: "ECDSA-SHA256-P256", 10: "ECDSA-SHA384-P384",
    11: "ECDSA-SHA512-P521", 12: "generic-secure-password", 13: "NULL", 14: "digital-signature",
}

AUTH_DIGITAL_SIGNATURE = 14

# RFC 7427 3 and Appendix A: the AlgorithmIdentifier at the start of a digital-signature AUTH payload.
SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}
RSASSA_PSS = "1.2.840.113549.1.1.10"
HASH_ALGORITHMS = {   # named inside RSASSA-PSS parameters
    "2.16.840.1.101.3.4.2.1": "SHA-256", "2.16.840.1.101.3.4.2.2": "SHA-384", "2.16.840.1.101.3.4.2.3": "SHA-512",
}

# RFC 7296 3.13.1, "IKEv2 Traffic Selector Types".
TS_TYPES = {7: "TS_IPV4_ADDR_RANGE", 8: "TS_IPV6_ADDR_RANGE", 9: "TS_FC_ADDR_RANGE", 10: "TS_SECLABEL"}
TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE = 7, 8

# RFC 7296 3.15, "IKEv2 Configuration Payload CFG Types" and "... Attribute Types".
CFG_TYPES = {1: "CFG_REQUEST", 2: "CFG_REPLY", 3: "CFG_SET", 4: "CFG_ACK"}
CFG_ATTRIBUTES = {
    1: "INTERNAL_IP4_ADDRESS", 2: "INTERNAL_IP4_NETMASK", 3: "INTERNAL_IP4_DNS", 4: "INTERNAL_IP4_NBNS",
    6: "INTERNAL_IP4_DHCP", 7: "APPLICATION_VERSION", 8: "INTERNAL_IP6_ADDRESS", 10: "INTERNAL_IP6_DNS",
    12: "INTERNAL_IP6_DHCP", 13: "INTERNAL_IP4_SUBNET", 14: "SUPPORTED_ATTRIBUTES", 15: "INTERNAL_IP6_SUBNET",
    16: "MIP6_HOME_PREFIX", 17: "INTERNAL_IP6_LINK", 18: "INTERNAL_IP6_PREFIX", 19: "HOME_AGENT_ADDRESS",
    20: "P_CSCF_IP4_ADDRESS", 21: "P_CSCF_IP6_ADDRESS", 22: "FTT_KAT", 23: "EXTERNAL_SOURCE_IP4_NAT_INFO",
    24: "TIMEOUT_PERIOD_FOR_LIVENESS_CHECK", 25: "INTERNAL_DNS_DOMAIN", 26: "INTERNAL_DNSSEC_TA",
}

# RFC 7427 4, "IKEv2 Hash Algorithms": the data of SIGNATURE_HASH_ALGORITHMS.
HASH_ALGORITHM_IDS = {0: "RESERVED", 1: "SHA1", 2: "SHA2_256", 3: "SHA2_384", 4: "SHA2_512", 5: "IDENTITY",
                      6: "STREEBOG_256", 7: "STREEBOG_512"}
# RFC 8784 3, "IKEv2 PPK ID Types": the first byte of PPK_IDENTITY's data.
PPK_ID_TYPES = {1: "PPK_ID_OPAQUE", 2: "PPK_ID_FIXED"}
# RFC 5685 9, "IKEv2 Gateway Identity Types": REDIRECT and REDIRECTED_FROM.
GATEWAY_IDENTITY_TYPES = {1: "IPv4", 2: "IPv6", 3: "FQDN"}
# RFC 3748 4 and 5: the EAP message an EAP payload carries.
EAP_CODES = {1: "Request", 2: "Response", 3: "Success", 4: "Failure"}
EAP_TYPES = {1: "Identity", 2: "Notification", 3: "Nak", 4: "MD5-Challenge", 5: "OTP", 6: "GTC", 13: "EAP-TLS",
             18: "EAP-SIM", 21: "EAP-TTLS", 23: "EAP-AKA", 25: "PEAP", 26: "EAP-MSCHAPv2", 43: "EAP-FAST",
             49: "EAP-IKEv2", 50: "EAP-AKA'", 254: "Expanded"}
