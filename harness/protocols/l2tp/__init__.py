"""L2TPv2 (RFC 2661): the control and data message codec (`codec`: header, `avp`: the AVPs, hiding and tunnel
authentication). A pair is a LAC, which places the call and sends SCCRQ, and an LNS, which answers it."""
ROLES = ("lac", "lns")

# Host capabilities (harness.host) an L2TP vendor may need: the kernel's L2TP and PPP (pppd needs /dev/ppp).
HOST_CAPABILITIES = {
    "kernel-l2tp": {"meaning": "L2TP in the kernel", "probe": "succeeds ip l2tp show tunnel"},
    "ppp": {"meaning": "PPP in the kernel (/dev/ppp)",
            "probe": 'if grep -qw ppp /proc/devices; then echo yes; '
                     'else echo "no /proc/devices has no ppp (ppp_generic not loaded)"; fi'},
}

# What a vendor may declare in vendor.toml (`features`, `gaps`) and a case may ask for (the `features` and
# `any_features` marks): nothing else is accepted, so a misspelt name is an error, never a silent skip.
FEATURES = {
    "tunnel_auth": "tunnel authentication with a shared secret: Challenge and Challenge Response (RFC 2661 5.1.1)",
    "data_plane": "IPv4 over PPP through the session (ping both ways, iperf3)",
    "hidden_avps": "hides AVPs with the tunnel secret when asked (RFC 2661 4.3)",
    "hello": "sends Hello after the hello_interval_s of silence a case asks for (RFC 2661 6.5)",
    # Vendors declaring it play the prober in the cases marked `probes` (harness.pairlab): the reference peer
    # scapy-l2tp, since a misbehaviour in the middle of a handshake needs a whole implementation.
    "probes": "misbehaves on request (scenario.PROBES): the robustness cases judge the other side",
    # RFC 3193: a stack declaring it carries L2TP only inside IPsec (scenario.Protection): against a peer that does
    # not, a cell is skipped (fixtures.L2tpPair); between two such stacks every case runs over IPsec.
    "ipsec": "protects its L2TP with IPsec as RFC 3193 has it: IKEv1 Main Mode with a pre-shared key, then a Quick "
             "Mode SA in transport mode for UDP port 1701, its policies in place before L2TP is sent",
    "retransmit_timers": "retransmits on the schedule a case asks for (retransmit_s, max_retransmissions; RFC 2661 "
                         "5.8), so a wait for an answer that never comes ends when it gives up",
}

# A stack declaring "ipsec" carries L2TP only inside IPsec: a pair where one side alone declares it is ruled out.
BOTH_OR_NEITHER = ("ipsec",)
