"""schemathesis hooks for scripts/fuzz: signs deploy-hook requests.

With FLEETGATE_FUZZ_WEBHOOK_SECRET set, every request to the deploy hook gets fresh Standard
Webhooks headers in place of the generated ones (a new webhook-id, the current timestamp, a v1 signature over the exact body
bytes sent), so the fuzzer reaches the event parsing and the registry behind the signature
check; a case generated without one of the three headers is sent as it is. Half of the generated `instance.deployed` events also get their hosts made into names
that parse (the spec cannot say which strings do: it accepts internationalised names), so that
deploys, host conflicts, suspensions and deletions reach the database. Without the secret,
requests go out as generated (and are refused at the signature).
"""

import json
import os
import re
import uuid
import zlib
from datetime import datetime, timezone

import schemathesis
from standardwebhooks.webhooks import Webhook

DEPLOY_HOOK = "/v1/hooks/deploy"
SIGNATURE_HEADERS = {"webhook-id", "webhook-timestamp", "webhook-signature"}
_secret = os.environ.get("FLEETGATE_FUZZ_WEBHOOK_SECRET")
_webhook = Webhook(_secret) if _secret else None


def _body_bytes(body) -> bytes:
    if isinstance(body, bytes):
        return body
    if body is None or type(body).__name__ == "NotSet":
        return b""
    return json.dumps(body).encode()


def _host(generated: str, index: int) -> str:
    label = re.sub(r"[^a-z0-9]", "", generated.lower())[:20] or "x"
    return f"{label}.{'apps' if index % 2 else 'fuzz'}.example.com"


def _parseable_hosts(body) -> None:
    """Half of the deploy events (chosen by content) get hosts that parse, in place."""
    data = body.get("data") if isinstance(body, dict) else None
    domains = data.get("domains") if isinstance(data, dict) else None
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        return
    if zlib.crc32(json.dumps(body, sort_keys=True).encode()) % 2:
        return
    domains[:] = [_host(d, i) for i, d in enumerate(domains)]


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if _webhook is None or case.operation.path != DEPLOY_HOOK:
        return
    headers = dict(case.headers or {})
    if not SIGNATURE_HEADERS <= {name.lower() for name in headers}:
        return  # a case about a missing header stays without it
    _parseable_hosts(case.body)
    body = _body_bytes(case.body)
    msg_id = f"msg_fuzz_{uuid.uuid4().hex}"
    now = datetime.now(tz=timezone.utc)
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(int(now.timestamp()))
    headers["webhook-signature"] = _webhook.sign(msg_id, now, body.decode("utf-8", "replace"))
    case.headers = headers
    # Send exactly the bytes that were signed.
    kwargs["data"] = body
    kwargs["json"] = None
