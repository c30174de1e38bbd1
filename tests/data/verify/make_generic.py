#!/usr/bin/env python3
"""Reference vectors for the generic schemes, written to generic.jsonl.

    python3 -m venv /tmp/vvenv && /tmp/vvenv/bin/pip install stripe standardwebhooks
    /tmp/vvenv/bin/python tests/data/verify/make_generic.py

- stripe: signed by stripe-python's WebhookSignature.generate_signature_header;
- standard_webhooks: signed by the standardwebhooks library's Webhook.sign;
- github: the worked example of GitHub's "Validating webhook deliveries";
- slack: the worked example of Slack's "Verifying requests from Slack";
- shopify and hmac_sha256: the HMAC the senders' documentation describes.

Every vector also records `reference`: what the sender's own library (or its
documentation's code) says at the vector's `now`, with the library's clock
fixed there. hookgate agrees with it except where a vector's `note` says why
(Stripe's library checks only the past; hookgate checks both ways).
"""

import base64
import hashlib
import hmac
import json
import sys
import types
from datetime import datetime, timezone
from pathlib import Path

import standardwebhooks.webhooks as swh
import stripe
import stripe._webhook as stripe_webhook

NOW = 1767225600  # 2026-01-01T00:00:00Z
OUT = []


def vector(**fields):
    v = {"method": "POST", "query": None, "content_type": "application/json", "headers": [], "body": "", "now": NOW}
    v.update(fields)
    order = ["name", "scheme", "secrets", "header", "encoding", "prefix", "method", "query", "content_type", "headers",
             "body", "now", "expect", "reference", "note"]
    OUT.append({k: v[k] for k in order if k in v})


def verdict(check):
    try:
        check()
        return "ok"
    except Exception:
        return "refused"


# ---- Stripe -----------------------------------------------------------------

STRIPE_SECRET = "whsec_hookgate0test0secret0Tk4r9x"
PAYLOAD = '{"id":"evt_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1"}}}'


def stripe_reference(payload, header, secrets, now):
    stripe_webhook.time = types.SimpleNamespace(time=lambda: now)
    ok = any(
        verdict(lambda s=s: stripe.WebhookSignature.verify_header(payload, header, s, tolerance=300)) == "ok"
        for s in secrets
    )
    return "ok" if ok else "refused"


def stripe_vector(name, header_values, expect, payload=PAYLOAD, secrets=(STRIPE_SECRET,), now=NOW, note=None):
    headers = [["Stripe-Signature", h] for h in header_values]
    reference = stripe_reference(payload, header_values[0], secrets, now) if len(header_values) == 1 else "refused"
    fields = dict(name=f"stripe: {name}", scheme="stripe", secrets=list(secrets), headers=headers, body=payload,
                  now=now, expect=expect, reference=reference)
    if note:
        fields["note"] = note
    vector(**fields)


signed = stripe.WebhookSignature.generate_signature_header(PAYLOAD, STRIPE_SECRET, timestamp=NOW)
stripe.WebhookSignature.verify_header(PAYLOAD, signed, STRIPE_SECRET, tolerance=None)  # the library's own check
v1 = signed.split("v1=")[1]
wrong = stripe.WebhookSignature.generate_signature_header(PAYLOAD, "whsec_other", timestamp=NOW).split("v1=")[1]
stripe_vector("signed by stripe-python", [signed], "ok")
stripe_vector("300 s old: the bound is inside", [signed], "ok", now=NOW + 300)
stripe_vector("301 s old", [signed], "stale", now=NOW + 301)
stripe_vector("301 s ahead", [signed], "stale", now=NOW - 301,
              note="stripe-python checks only the past; hookgate checks tolerance both ways")
stripe_vector("several v1 and a v0, the second v1 matches", [f"t={NOW},v1={wrong},v1={v1},v0={wrong}"], "ok")
stripe_vector("rotation: the second secret", [signed], "ok", secrets=("whsec_old", STRIPE_SECRET))
stripe_vector("wrong secret", [signed], "bad_signature", secrets=("whsec_other",))
stripe_vector("changed body", [signed], "bad_signature", payload=PAYLOAD.replace("cs_1", "cs_2"))
stripe_vector("forged and stale: the signature is checked first", [f"t={NOW - 9999},v1={wrong}"], "bad_signature")
stripe_vector("no t", [f"v1={v1}"], "malformed")
stripe_vector("t is not a number", [f"t=now,v1={v1}"], "malformed")
stripe_vector("v0 only", [f"t={NOW},v0={v1}"], "malformed")
stripe_vector("repeated header", [signed, signed], "malformed")
vector(name="stripe: no header", scheme="stripe", secrets=[STRIPE_SECRET], body=PAYLOAD, expect="missing", reference="refused")

# ---- Standard Webhooks ------------------------------------------------------

WH_SECRET = "whsec_" + base64.b64encode(b"hookgate standard webhooks key!").decode()
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


class _FixedNow(datetime):
    instant = NOW

    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(cls.instant, tz=tz)


swh.datetime = _FixedNow


def wh_sign(secret, msg_id, at, payload=PAYLOAD):
    return swh.Webhook(secret).sign(msg_id, datetime.fromtimestamp(at, tz=timezone.utc), payload)


def wh_vector(name, expect, headers, payload=PAYLOAD, secrets=(WH_SECRET,), now=NOW):
    _FixedNow.instant = now
    plain = {k: v for k, v in headers}
    reference = "refused"
    if len(plain) == len(headers):
        reference = "ok" if any(
            verdict(lambda s=s: swh.Webhook(s).verify(payload, plain)) == "ok" for s in secrets) else "refused"
    vector(name=f"standard_webhooks: {name}", scheme="standard_webhooks", secrets=list(secrets), headers=headers,
           body=payload, now=now, expect=expect, reference=reference)


def wh_headers(signature, msg_id=MSG_ID, at=NOW):
    return [["webhook-id", msg_id], ["webhook-timestamp", str(at)], ["webhook-signature", signature]]


good = wh_sign(WH_SECRET, MSG_ID, NOW)
other = wh_sign("whsec_" + base64.b64encode(b"another key").decode(), MSG_ID, NOW)
wh_vector("signed by the standardwebhooks library", "ok", wh_headers(good))
wh_vector("other versions ignored, several entries", "ok", wh_headers(f"v1a,{good[3:]} {other} {good}"))
wh_vector("rotation: the second secret", "ok", wh_headers(good), secrets=("whsec_b2xkIGtleQ==", WH_SECRET))
wh_vector("300 s ahead: the bound is inside", "ok", wh_headers(good), now=NOW - 300)
wh_vector("301 s old", "stale", wh_headers(good), now=NOW + 301)
wh_vector("301 s ahead", "stale", wh_headers(good), now=NOW - 301)
wh_vector("wrong secret", "bad_signature", wh_headers(other))
wh_vector("changed id", "bad_signature", wh_headers(good, msg_id="msg_other"))
wh_vector("changed body", "bad_signature", wh_headers(good), payload=PAYLOAD + " ")
wh_vector("no version,signature entry", "malformed", wh_headers(good.replace(",", "")))
wh_vector("timestamp not a number", "malformed", [["webhook-id", MSG_ID], ["webhook-timestamp", "soon"], ["webhook-signature", good]])
wh_vector("no webhook-id", "missing", wh_headers(good)[1:])
wh_vector("no webhook-timestamp", "missing", [h for h in wh_headers(good) if h[0] != "webhook-timestamp"])
wh_vector("repeated webhook-signature", "malformed", wh_headers(good) + [["webhook-signature", good]])

# ---- GitHub: the documentation's example --------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
assert "sha256=" + hmac.new(GITHUB_SECRET.encode(), b"Hello, World!", hashlib.sha256).hexdigest() == GITHUB_SIG


def github_vector(name, expect, headers, body="Hello, World!", secrets=(GITHUB_SECRET,)):
    vector(name=f"github: {name}", scheme="github", secrets=list(secrets), headers=headers, body=body, expect=expect)


github_vector("the documentation's example", "ok", [["X-Hub-Signature-256", GITHUB_SIG]])
github_vector("rotation: the second secret", "ok", [["X-Hub-Signature-256", GITHUB_SIG]], secrets=("old", GITHUB_SECRET))
github_vector("changed body", "bad_signature", [["X-Hub-Signature-256", GITHUB_SIG]], body="Hello, World?")
github_vector("wrong secret", "bad_signature", [["X-Hub-Signature-256", GITHUB_SIG]], secrets=("It's a secret",))
github_vector("sha1 header only", "missing", [["X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"]])
github_vector("no sha256= prefix", "malformed", [["X-Hub-Signature-256", GITHUB_SIG[7:]]])
github_vector("repeated header", "malformed", [["X-Hub-Signature-256", GITHUB_SIG], ["X-Hub-Signature-256", GITHUB_SIG]])

# ---- Slack: the documentation's example ----------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = "1531420618"
SLACK_BODY = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
              "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
              "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
              "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
assert "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{SLACK_TS}:{SLACK_BODY}".encode(), hashlib.sha256).hexdigest() == SLACK_SIG


def slack_vector(name, expect, headers, now=int(SLACK_TS) + 60, secrets=(SLACK_SECRET,), body=SLACK_BODY):
    vector(name=f"slack: {name}", scheme="slack", secrets=list(secrets), content_type="application/x-www-form-urlencoded",
           headers=headers, body=body, now=now, expect=expect)


slack_headers = [["X-Slack-Signature", SLACK_SIG], ["X-Slack-Request-Timestamp", SLACK_TS]]
slack_vector("the documentation's example", "ok", slack_headers)
slack_vector("301 s old", "stale", slack_headers, now=int(SLACK_TS) + 301)
slack_vector("301 s ahead", "stale", slack_headers, now=int(SLACK_TS) - 301)
slack_vector("wrong secret", "bad_signature", slack_headers, secrets=("8f742231b10e8888abcd99yyyzzz85a6",))
slack_vector("changed body", "bad_signature", slack_headers, body=SLACK_BODY.replace("foobar", "general"))
slack_vector("changed timestamp", "bad_signature", [slack_headers[0], ["X-Slack-Request-Timestamp", "1531420619"]])
slack_vector("no timestamp", "missing", slack_headers[:1])
slack_vector("v1= instead of v0=", "malformed", [["X-Slack-Signature", "v1" + SLACK_SIG[2:]], slack_headers[1]])

# ---- Shopify and hmac_sha256: the documented HMAC -------------------------------

SHOPIFY_SECRET = "shpss_0123456789abcdef"
ORDER = '{"id":820982911946154508,"email":"jon@example.com","total_price":"10.00"}'
shopify_sig = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), ORDER.encode(), hashlib.sha256).digest()).decode()
for name, expect, headers, body in [
    ("the documented HMAC", "ok", [["X-Shopify-Hmac-SHA256", shopify_sig]], ORDER),
    ("changed body", "bad_signature", [["X-Shopify-Hmac-SHA256", shopify_sig]], ORDER.replace("10.00", "0.01")),
    ("not base64", "malformed", [["X-Shopify-Hmac-SHA256", "not base64!"]], ORDER),
    ("no header", "missing", [], ORDER),
]:
    vector(name=f"shopify: {name}", scheme="shopify", secrets=[SHOPIFY_SECRET], headers=headers, body=body, expect=expect)

GENERIC_SECRET = "generic sender secret"
digest = hmac.new(GENERIC_SECRET.encode(), ORDER.encode(), hashlib.sha256)
for name, encoding, prefix, value, expect in [
    ("hex with a prefix", "hex", "sha256=", "sha256=" + digest.hexdigest(), "ok"),
    ("upper-case hex", "hex", "sha256=", "sha256=" + digest.hexdigest().upper(), "ok"),
    ("base64", "base64", "", base64.b64encode(digest.digest()).decode(), "ok"),
    ("prefix missing", "hex", "sha256=", digest.hexdigest(), "malformed"),
    ("hex digest of the wrong length", "hex", "", digest.hexdigest()[:62], "malformed"),
]:
    vector(name=f"hmac_sha256: {name}", scheme="hmac_sha256", header="X-Signature", encoding=encoding, prefix=prefix,
           secrets=[GENERIC_SECRET], headers=[["X-Signature", value]], body=ORDER, expect=expect)

# Each vector's reference verdict agrees with hookgate's, or says why not.
for v in OUT:
    if "reference" in v and v["reference"] != ("ok" if v["expect"] == "ok" else "refused") and "note" not in v:
        sys.exit(f"the reference library disagrees on: {v['name']}")

Path(__file__).with_name("generic.jsonl").write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in OUT))
print(f"{len(OUT)} vectors in generic.jsonl", file=sys.stderr)
