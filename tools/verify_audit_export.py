#!/usr/bin/env python3
"""Check a tenant's exported Strongroom audit trail without trusting the server.

Reads JSON on standard input:
  {"public_key_hex": "...",            # GET /v1/tenants/{slug}/audit/public-key
   "events": [...],                    # GET /v1/tenants/{slug}/audit pages, any order
   "checkpoints": [...]}               # GET /v1/tenants/{slug}/audit/checkpoints pages

Each event's hash must be SHA-256("strongroom/audit-chain/v1\\0" || previous hash ||
sequence as 8 big-endian bytes || event_json); the first previous hash is 32 zero bytes, or,
when older events have expired, the head of the expiry mark just before the first one (an
ordinary checkpoint there means the trail was cut). Each checkpoint's Ed25519 signature must
verify over "strongroom/audit-checkpoint/v1\\0<chain_id>\\0<sequence>\\0<head hex>" (an expiry
mark's over "strongroom/audit-expiry/v1\\0..."), and its head must be the hash recomputed at its
sequence. Exits 0 when everything holds; otherwise prints where the
trail breaks and exits 1.
"""
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(sequence, reason):
    print(json.dumps({"intact": False, "broken_at": sequence, "problem": reason}))
    sys.exit(1)


def main():
    export = json.load(sys.stdin)
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(export["public_key_hex"]))
    events = sorted(export["events"], key=lambda event: event["sequence"])
    checkpoints = {checkpoint["sequence"]: checkpoint for checkpoint in export["checkpoints"]}
    for checkpoint in checkpoints.values():
        label = "audit-expiry" if checkpoint.get("expiry") else "audit-checkpoint"
        message = "strongroom/{}/v1\0{}\0{}\0{}".format(
            label, checkpoint["chain_id"], checkpoint["sequence"], checkpoint["head"]
        ).encode()
        try:
            key.verify(bytes.fromhex(checkpoint["signature"]), message)
        except InvalidSignature:
            fail(checkpoint["sequence"], "a checkpoint's signature does not verify")
    if not events:
        # Every event expired, or there never were any: only an expiry mark may end the trail.
        if checkpoints and not checkpoints[max(checkpoints)].get("expiry"):
            fail(max(checkpoints), "events up to a signed checkpoint are missing")
        print(json.dumps({"intact": True, "events": 0}))
        return
    first = events[0]["sequence"]
    if first == 1:
        previous = bytes(32)
    elif first - 1 in checkpoints and checkpoints[first - 1].get("expiry"):
        previous = bytes.fromhex(checkpoints[first - 1]["head"])
    elif first - 1 in checkpoints:
        fail(first, "the trail starts late after a checkpoint that marks no expiry: it was cut")
    else:
        fail(first, "the trail starts late and no signed checkpoint covers the gap")
    heads = {}
    for expected, event in enumerate(events, start=first):
        if event["sequence"] != expected:
            fail(expected, "an event is missing")
        digest = hashlib.sha256()
        digest.update(b"strongroom/audit-chain/v1\0")
        digest.update(previous)
        digest.update(expected.to_bytes(8, "big"))
        digest.update(event["event_json"].encode())
        if digest.hexdigest() != event["hash"]:
            fail(expected, "an event does not match its hash")
        previous = digest.digest()
        heads[expected] = digest.hexdigest()
    for sequence, checkpoint in checkpoints.items():
        if sequence >= first and heads.get(sequence) not in (None, checkpoint["head"]):
            fail(sequence, "the events do not lead to a signed head")
        if sequence > events[-1]["sequence"]:
            fail(sequence, "events up to a signed checkpoint are missing")
    print(json.dumps({"intact": True, "events": len(events), "checkpoints": len(checkpoints)}))


main()
