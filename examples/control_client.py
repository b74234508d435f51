#!/usr/bin/env python3
"""A complete porthole control-plane client in Python, with the `websockets` library
(Debian: python3-websockets). Same steps as control-client.mjs:

    PORTHOLE_URL=https://desk.example:7070 PORTHOLE_TOKEN=ph_... \
        python3 examples/control_client.py [--fingerprint AA:BB:...] [--wait SECONDS]

Protocol (docs/control-plane.md): the server sends `connect.challenge` {nonce, ts,
bindings}; we answer `connect` with an HMAC-SHA256 keyed by SHA-256(token) over
"porthole-control-v1\\nNONCE\\nTS\\nnone\\n\\nDEVICE". Python's ssl module cannot read a TLS
exporter, so when the gateway terminates TLS itself (bindings = ["tls-exporter"]) this
client sends the token over that TLS connection instead (scheme "token"), after checking
the certificate's SHA-256 fingerprint when one is given.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import urllib.parse

import websockets

PROTOCOL = 1


def control_url(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}[u.scheme]
    path = u.path.rstrip("/")
    if not path.endswith("/_porthole/ws"):
        path += "/_porthole/ws"
    return f"{scheme}://{u.netloc}{path}"


def proof(token: str, nonce: str, ts: int, device: str) -> str:
    key = hashlib.sha256(token.encode()).digest()
    msg = "\n".join(["porthole-control-v1", nonce, str(ts), "none", "", device]).encode()
    return base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).rstrip(b"=").decode()


class ControlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{message} [{code}]")
        self.code = code


async def main() -> int:
    args = sys.argv[1:]
    opt = lambda name: args[args.index(name) + 1] if name in args else None  # noqa: E731
    url, token = os.environ["PORTHOLE_URL"], os.environ["PORTHOLE_TOKEN"]
    fingerprint = opt("--fingerprint")
    device = "example (python)"
    ws_url = control_url(url)
    ctx = None
    if ws_url.startswith("wss:"):
        ctx = ssl.create_default_context()
        if fingerprint:
            # The pin replaces the CA check: verify the fingerprint ourselves, below,
            # before anything secret is sent.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    async with websockets.connect(ws_url, ssl=ctx, max_size=16 * 1024 * 1024) as ws:
        if fingerprint:
            der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
            want = bytes.fromhex(fingerprint.replace(":", ""))
            if not hmac.compare_digest(hashlib.sha256(der).digest(), want):
                raise ControlError("TLS_PIN_MISMATCH", "the certificate does not match the fingerprint")
        challenge = json.loads(await ws.recv())
        assert challenge["event"] == "connect.challenge", challenge
        c = challenge["payload"]
        if "tls-exporter" in c["bindings"]:
            auth = {"scheme": "token", "token": token}
        else:
            auth = {"scheme": "hmac", "proof": proof(token, c["nonce"], c["ts"], device), "binding": "none"}
        await ws.send(json.dumps({"type": "req", "id": "connect", "method": "connect", "params": {
            "nonce": c["nonce"], "minProtocol": PROTOCOL, "maxProtocol": PROTOCOL,
            "deviceName": device, "auth": auth}}))
        next_id = 0
        events = []

        async def request(method, params=None):
            nonlocal next_id
            next_id += 1
            rid = str(next_id)
            frame = {"type": "req", "id": rid, "method": method}
            if params is not None:
                frame["params"] = params
            await ws.send(json.dumps(frame))
            while True:
                f = json.loads(await ws.recv())
                if f["type"] == "event":
                    events.append(f)
                elif f["id"] == rid:
                    if not f["ok"]:
                        raise ControlError(f["error"]["code"], f["error"]["message"])
                    return f["payload"]

        hello = json.loads(await ws.recv())
        if not hello["ok"]:
            raise ControlError(hello["error"]["code"], hello["error"]["message"])
        print(json.dumps({"step": "hello", "clientId": hello["payload"]["clientId"], "methods": hello["payload"]["methods"]}), flush=True)
        print(json.dumps({"step": "health", "result": await request("health")}), flush=True)
        status = await request("status")
        print(json.dumps({"step": "status", "version": status["version"]}), flush=True)
        wait = float(opt("--wait") or 0)
        if wait > 0:
            print(json.dumps({"step": "waiting"}), flush=True)
            f = events.pop(0) if events else json.loads(await asyncio.wait_for(ws.recv(), wait))
            print(json.dumps({"step": "event", "name": f["event"], "payload": f["payload"]}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except ControlError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except websockets.ConnectionClosed as e:
        print(f"error: connection closed {e.code} {e.reason}", file=sys.stderr)
        sys.exit(1)
