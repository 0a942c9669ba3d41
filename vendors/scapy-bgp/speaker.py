"""The harness's reference BGP EVPN speaker: a passive BGP speaker (its peers connect to it) that answers OPEN,
keeps the session alive and sends exactly the UPDATEs it is given, bytes as built by the harness's codec
(harness/protocols/evpn/bgp.py): arbitrary MAC mobility sequence numbers, the sticky flag, a missing
encapsulation community, a label that is not the VNI, malformed routes. It derives nothing and checks nothing.

Config: /etc/scapy-bgp/config.json ({"asn", "router_id", "hold", "peers": [addresses]}).
Outbox: every file /run/scapy-bgp/out/*.msg (one or more whole BGP messages) is sent, in name order, to every
established session and remembered: a session established later gets them all, then End-of-RIB (except files
named *.once.msg: a malformed message that resets a session would otherwise be replayed into every new one).
State: /run/scapy-bgp/established/<peer> exists while that session is Established.
What it hears is logged, decoded by the codec, one message per line group.
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, "/opt/scapy-bgp")
from harness.protocols.evpn import bgp  # noqa: E402  (shipped beside this file by the adapter)

CONFIG = "/etc/scapy-bgp/config.json"
RUN = "/run/scapy-bgp"
OUT, STATE = f"{RUN}/out", f"{RUN}/established"


def log(text):
    print(time.strftime("%H:%M:%S"), text, file=sys.stderr, flush=True)


class Session:
    def __init__(self, sock, peer, config, speaker):
        self.sock, self.peer, self.config, self.speaker = sock, peer, config, speaker
        self.lock = threading.Lock()
        self.established = False
        self.hold = config.get("hold", 9)

    def send(self, raw, what):
        with self.lock:
            try:
                self.sock.sendall(raw)
            except OSError as exc:
                log(f"{self.peer}: send failed ({what}): {exc}")
                return
        log(f"{self.peer} < {what}")

    def run(self):
        buffer = b""
        self.sock.settimeout(self.hold)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    log(f"{self.peer}: connection closed")
                    return
                buffer += data
                found, buffer, why = bgp.split(buffer)
                for _, raw in found:
                    self.heard(bgp.decode(raw))
                if why:
                    log(f"{self.peer}: stream broken ({why}), closing")
                    return
        except (OSError, socket.timeout) as exc:
            log(f"{self.peer}: {exc}")
        finally:
            self.close()

    def heard(self, message):
        log(f"{self.peer} > {message.text()}" + "".join(f"\n    {r.text()}" for r in message.reached())
            + "".join(f"\n    - {r.text()}" for r in message.withdrawn())
            + "".join(f"\n    ! {p}" for p in message.problems))
        if message.type_name == "OPEN" and not self.established:
            self.send(bgp.open_message(self.config["asn"], self.config["router_id"], self.hold), "OPEN")
            self.send(bgp.keepalive(), "KEEPALIVE")
        elif message.type_name == "KEEPALIVE" and not self.established:
            self.established = True
            open(f"{STATE}/{self.peer}", "w").close()
            log(f"{self.peer}: Established")
            for name, raw in self.speaker.sent():
                self.send(raw, name)
            self.send(bgp.end_of_rib(), "End-of-RIB")
            threading.Thread(target=self.keepalives, daemon=True).start()
        elif message.type_name == "NOTIFICATION":
            log(f"{self.peer}: NOTIFICATION received, closing")
            self.close()

    def keepalives(self):
        while self.established:
            time.sleep(max(self.hold // 3, 1))
            if self.established:
                self.send(bgp.keepalive(), "KEEPALIVE")

    def close(self):
        if self.established:
            self.established = False
            try:
                os.unlink(f"{STATE}/{self.peer}")
            except FileNotFoundError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.speaker.sessions.discard(self)


class Speaker:
    def __init__(self, config):
        self.config = config
        self.sessions = set()
        self.messages = []  # (file name, bytes) sent so far, in order
        self.lock = threading.Lock()

    def sent(self):
        with self.lock:
            return list(self.messages)

    def outbox(self):
        while True:
            for name in sorted(os.listdir(OUT)):
                if not name.endswith(".msg"):
                    continue
                path = f"{OUT}/{name}"
                with open(path, "rb") as f:
                    raw = f.read()
                os.rename(path, path + ".sent")
                if not name.endswith(".once.msg"):  # sent now, never replayed to a later session
                    with self.lock:
                        self.messages.append((name, raw))
                for session in list(self.sessions):
                    if session.established:
                        session.send(raw, name)
            time.sleep(0.05)

    def serve(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", bgp.PORT))
        listener.listen(8)
        log(f"listening on {bgp.PORT}, AS {self.config['asn']}, id {self.config['router_id']}")
        threading.Thread(target=self.outbox, daemon=True).start()
        while True:
            sock, (address, _) = listener.accept()
            if address not in self.config["peers"]:
                log(f"{address}: not a configured peer, closing")
                sock.close()
                continue
            session = Session(sock, address, self.config, self)
            self.sessions.add(session)
            threading.Thread(target=session.run, daemon=True).start()


def main():
    with open(CONFIG) as f:
        config = json.load(f)
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(STATE, exist_ok=True)
    Speaker(config).serve()


if __name__ == "__main__":
    main()
