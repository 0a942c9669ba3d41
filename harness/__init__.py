"""overlay-interop: run real overlay/VPN implementations against each other and judge them from the wire."""
