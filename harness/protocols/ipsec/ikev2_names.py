"""IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries that only matter once a payload is
opened: transforms, identities, authentication methods, traffic selectors, configuration attributes.

The message-level tables (exchange, payload and notify types) live in wire.py, which needs them to read the
clear part of a message. Transform names follow the scenario's vocabulary (keys.py, scenario.py): an
encryption transform with a key-length attribute is named with its size appended ("ENCR_AES_CBC_128").
"""
from __future__ import annotations

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
