#!/usr/bin/python3
"""fake_slack.py -- a checking fake of Slack's Web API, and Slack's side of
interactions, for the tests of steppy's Slack bot channels.

serve: an HTTP server on 127.0.0.1 with the three Web API methods steppy
calls, chat.postMessage, chat.update and chat.postEphemeral (POST
/api/METHOD).  Each request is checked the way Slack documents it:

  * "Authorization: Bearer TOKEN" with the bot token (else invalid_auth);
  * "Content-Type: application/json" (charset utf-8 allowed);
  * a JSON object with the method's arguments: channel (and ts for
    chat.update, user for chat.postEphemeral), text or blocks;
  * blocks: at most 50; header (plain_text, <= 150 characters), section
    (mrkdwn or plain_text, <= 3000), context (1 to 10 text elements),
    actions (1 to 25 buttons: plain_text label <= 75, action_id <= 255 and
    unique in the message, value <= 2000, url <= 3000, style primary or
    danger, a confirm dialog's title/text/confirm/deny plain_text within
    Slack's lengths); no unknown keys in any of them.

A request that breaks a rule is answered {"ok": false, "error":
"invalid_arguments" or "invalid_blocks" ...} like Slack, and recorded as a
violation.  Every call is appended to the log file as one JSON line
{"method", "body", "ok", "error"}; GET /_fake/violations lists violations.

click: plays Slack sending an interaction: reads the latest version of a
message from the log (or the one first posted: a button clicked on an old
copy), builds a block_actions payload as Slack does for a
click on one of its buttons, signs it (v0 HMAC-SHA256 of
"v0:TIMESTAMP:BODY" with the signing secret) and POSTs it to steppy's
/slack/interactions.  Options forge the signature, age the timestamp, or
save the request to send again verbatim (a replay).  Prints the HTTP status.

    /usr/bin/python3 fake_slack.py serve --port-file F --log F --token T
    /usr/bin/python3 fake_slack.py click --url URL --log F --secret S --user U
        --action steppy-approve [--message N] [--original] [--forge] [--age SECONDS]
        [--save FILE] | --replay FILE
"""

import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
VIOLATIONS = []
MESSAGES = {}  # (channel, ts) -> body
SEQ = [0]


class Invalid(Exception):
    def __init__(self, error, detail):
        super().__init__(detail)
        self.error = error
        self.detail = detail


def text_object(o, where, max_len, plain_only=False):
    if not isinstance(o, dict):
        raise Invalid("invalid_blocks", f"{where}: not a text object")
    extra = set(o) - {"type", "text", "emoji", "verbatim"}
    if extra:
        raise Invalid("invalid_blocks", f"{where}: unknown keys {sorted(extra)}")
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if o.get("type") not in kinds:
        raise Invalid("invalid_blocks", f"{where}: type must be one of {kinds}")
    t = o.get("text")
    if not isinstance(t, str) or not t:
        raise Invalid("invalid_blocks", f"{where}: text must be a non-empty string")
    if len(t) > max_len:
        raise Invalid("invalid_blocks", f"{where}: more than {max_len} characters")
    if "emoji" in o and (o["type"] != "plain_text" or not isinstance(o["emoji"], bool)):
        raise Invalid("invalid_blocks", f"{where}: emoji is a boolean of plain_text")


def check_button(b, where, action_ids):
    allowed = {"type", "text", "action_id", "value", "url", "style", "confirm",
               "accessibility_label"}
    extra = set(b) - allowed
    if extra:
        raise Invalid("invalid_blocks", f"{where}: unknown keys {sorted(extra)}")
    if b.get("type") != "button":
        raise Invalid("invalid_blocks", f"{where}: only buttons are expected")
    text_object(b.get("text"), where + "/text", 75, plain_only=True)
    aid = b.get("action_id")
    if not isinstance(aid, str) or not aid or len(aid) > 255:
        raise Invalid("invalid_blocks", f"{where}/action_id: 1 to 255 characters")
    if aid in action_ids:
        raise Invalid("invalid_blocks", f"{where}/action_id: {aid} is not unique")
    action_ids.add(aid)
    if "value" in b and (not isinstance(b["value"], str) or len(b["value"]) > 2000):
        raise Invalid("invalid_blocks", f"{where}/value: a string of at most 2000")
    if "url" in b:
        u = b["url"]
        if not isinstance(u, str) or len(u) > 3000 or not u.startswith(("http://", "https://")):
            raise Invalid("invalid_blocks", f"{where}/url: an http(s) URL of at most 3000")
    if "style" in b and b["style"] not in ("primary", "danger"):
        raise Invalid("invalid_blocks", f"{where}/style: primary or danger")
    if "confirm" in b:
        c = b["confirm"]
        if not isinstance(c, dict) or set(c) - {"title", "text", "confirm", "deny", "style"}:
            raise Invalid("invalid_blocks", f"{where}/confirm: a confirmation dialog")
        for k, n in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
            text_object(c.get(k), f"{where}/confirm/{k}", n, plain_only=(k != "text"))


def check_blocks(blocks):
    if not isinstance(blocks, list) or len(blocks) > 50:
        raise Invalid("invalid_blocks", "blocks: a list of at most 50")
    action_ids = set()
    for i, b in enumerate(blocks):
        where = f"blocks/{i}"
        if not isinstance(b, dict):
            raise Invalid("invalid_blocks", f"{where}: not an object")
        t = b.get("type")
        common = {"type", "block_id"}
        if "block_id" in b and (not isinstance(b["block_id"], str) or len(b["block_id"]) > 255):
            raise Invalid("invalid_blocks", f"{where}/block_id: at most 255")
        if t == "header":
            if set(b) - common - {"text"}:
                raise Invalid("invalid_blocks", f"{where}: unknown keys")
            text_object(b.get("text"), where + "/text", 150, plain_only=True)
        elif t == "section":
            if set(b) - common - {"text", "fields", "accessory"}:
                raise Invalid("invalid_blocks", f"{where}: unknown keys")
            text_object(b.get("text"), where + "/text", 3000)
        elif t == "context":
            if set(b) - common - {"elements"}:
                raise Invalid("invalid_blocks", f"{where}: unknown keys")
            els = b.get("elements")
            if not isinstance(els, list) or not 1 <= len(els) <= 10:
                raise Invalid("invalid_blocks", f"{where}/elements: 1 to 10")
            for k, e in enumerate(els):
                text_object(e, f"{where}/elements/{k}", 3000)
        elif t == "actions":
            if set(b) - common - {"elements"}:
                raise Invalid("invalid_blocks", f"{where}: unknown keys")
            els = b.get("elements")
            if not isinstance(els, list) or not 1 <= len(els) <= 25:
                raise Invalid("invalid_blocks", f"{where}/elements: 1 to 25")
            for k, e in enumerate(els):
                check_button(e, f"{where}/elements/{k}", action_ids)
        elif t == "divider":
            if set(b) - common:
                raise Invalid("invalid_blocks", f"{where}: unknown keys")
        else:
            raise Invalid("invalid_blocks", f"{where}: unexpected block type {t!r}")


METHODS = {
    # method: (required, allowed)
    "chat.postMessage": ({"channel"}, {"channel", "text", "blocks", "unfurl_links",
                                       "unfurl_media", "thread_ts", "mrkdwn"}),
    "chat.update": ({"channel", "ts"}, {"channel", "ts", "text", "blocks"}),
    "chat.postEphemeral": ({"channel", "user"}, {"channel", "user", "text", "blocks"}),
}


def handle(method, headers, raw, token):
    if method not in METHODS:
        return 404, {"ok": False, "error": "unknown_method"}
    if headers.get("Authorization") != "Bearer " + token:
        raise Invalid("invalid_auth", "Authorization is not the bot token")
    ctype = headers.get("Content-Type", "")
    if ctype.split(";")[0].strip() != "application/json" or (
            ";" in ctype and ctype.split(";", 1)[1].strip().lower() != "charset=utf-8"):
        raise Invalid("invalid_arguments", f"Content-Type {ctype!r} is not JSON")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Invalid("invalid_json", str(e))
    if not isinstance(body, dict):
        raise Invalid("invalid_arguments", "the body is not an object")
    required, allowed = METHODS[method]
    missing = required - set(body)
    if missing:
        raise Invalid("invalid_arguments", f"missing {sorted(missing)}")
    extra = set(body) - allowed
    if extra:
        raise Invalid("invalid_arguments", f"unknown arguments {sorted(extra)}")
    for k in required:
        if not isinstance(body[k], str) or not body[k]:
            raise Invalid("invalid_arguments", f"{k} must be a non-empty string")
    if "text" not in body and "blocks" not in body:
        raise Invalid("no_text", "neither text nor blocks")
    if "text" in body and (not isinstance(body["text"], str) or len(body["text"]) > 40000):
        raise Invalid("invalid_arguments", "text: a string of at most 40000")
    if "blocks" in body:
        check_blocks(body["blocks"])
    for k in ("unfurl_links", "unfurl_media"):
        if k in body and not isinstance(body[k], bool):
            raise Invalid("invalid_arguments", f"{k} is a boolean")
    with LOCK:
        if method == "chat.postMessage":
            SEQ[0] += 1
            ts = "%d.%06d" % (int(time.time()), SEQ[0])
            MESSAGES[(body["channel"], ts)] = body
            return 200, {"ok": True, "channel": body["channel"], "ts": ts,
                         "message": {"type": "message", "ts": ts, "text": body.get("text", "")}}
        if method == "chat.update":
            key = (body["channel"], body["ts"])
            if key not in MESSAGES:
                raise Invalid("message_not_found", f"no message {key}")
            MESSAGES[key] = body
            return 200, {"ok": True, "channel": body["channel"], "ts": body["ts"],
                         "text": body.get("text", "")}
        SEQ[0] += 1
        return 200, {"ok": True, "message_ts": "%d.%06d" % (int(time.time()), SEQ[0])}


def serve(args):
    log = open(args.log, "a", buffering=1)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/_fake/violations":
                with LOCK:
                    self.answer(200, VIOLATIONS)
            else:
                self.answer(404, {"ok": False, "error": "unknown_method"})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            method = self.path[len("/api/"):] if self.path.startswith("/api/") else self.path
            entry = {"method": method, "ts": None}
            try:
                status, obj = handle(method, self.headers, raw, args.token)
                entry["ok"] = obj.get("ok", False)
                entry["ts"] = obj.get("ts")
            except Invalid as e:
                status, obj = 200, {"ok": False, "error": e.error, "errors": [e.detail]}
                entry["ok"] = False
                entry["error"] = f"{e.error}: {e.detail}"
                with LOCK:
                    VIOLATIONS.append({"method": method, "error": entry["error"]})
                print(f"fake_slack: {method}: {entry['error']}", file=sys.stderr, flush=True)
            try:
                entry["body"] = json.loads(raw)
            except ValueError:
                entry["body"] = raw.decode("utf-8", "replace")
            log.write(json.dumps(entry) + "\n")
            self.answer(status, obj)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_port))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


def latest_message(log_path, index, original=False):
    """The index-th message posted (0 first, -1 last), as last updated (or as posted)."""
    posted, versions = [], {}
    for line in open(log_path):
        e = json.loads(line)
        if not e.get("ok"):
            continue
        b = e["body"]
        if e["method"] == "chat.postMessage":
            posted.append((b["channel"], e["ts"]))
            versions[(b["channel"], e["ts"])] = b
        elif e["method"] == "chat.update" and not original:
            versions[(b["channel"], b["ts"])] = b
    key = posted[index]
    return key, versions[key]


def click(args):
    if args.replay:
        saved = json.load(open(args.replay))
        ts, sig, body = saved["ts"], saved["sig"], saved["body"]
    else:
        (channel, ts_msg), msg = latest_message(args.log, args.message, args.original)
        action = None
        for b in msg.get("blocks", []):
            for e in b.get("elements", []) if b.get("type") == "actions" else []:
                if e.get("action_id") == args.action:
                    action = dict(e, block_id=b.get("block_id", "actions"),
                                  action_ts="%.6f" % time.time())
        if action is None:
            print(f"no button {args.action} on the message", file=sys.stderr)
            sys.exit(3)
        payload = {
            "type": "block_actions",
            "user": {"id": args.user, "username": args.user.lower(), "name": args.user.lower(),
                     "team_id": "T0STEPPY"},
            "api_app_id": "A0STEPPY",
            "token": "legacy-verification-token-unused",
            "container": {"type": "message", "message_ts": ts_msg, "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": "1.2.3",
            "team": {"id": "T0STEPPY", "domain": "steppy-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "releases"},
            "message": {"type": "message", "subtype": "bot_message", "ts": ts_msg,
                        "bot_id": "B0STEPPY", "text": msg.get("text", ""),
                        "blocks": msg.get("blocks", [])},
            "state": {"values": {}},
            "response_url": "https://hooks.slack.com/actions/T0STEPPY/1/x",
            "actions": [action],
        }
        body = "payload=" + urllib.parse.quote_plus(json.dumps(payload))
        ts = str(int(time.time()) - args.age)
        secret = args.secret + ("-forged" if args.forge else "")
        base = ("v0:" + ts + ":" + body).encode()
        sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if args.save:
        json.dump({"ts": ts, "sig": sig, "body": body}, open(args.save, "w"))
    req = urllib.request.Request(
        args.url.rstrip("/") + "/slack/interactions", data=body.encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
                 "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--token", required=True)
    c = sub.add_parser("click")
    c.add_argument("--url", required=True)
    c.add_argument("--log")
    c.add_argument("--secret", default="")
    c.add_argument("--user", default="U0NOBODY")
    c.add_argument("--action", default="steppy-approve")
    c.add_argument("--message", type=int, default=-1)
    c.add_argument("--original", action="store_true")
    c.add_argument("--forge", action="store_true")
    c.add_argument("--age", type=int, default=0)
    c.add_argument("--save")
    c.add_argument("--replay")
    args = p.parse_args()
    serve(args) if args.cmd == "serve" else click(args)


if __name__ == "__main__":
    main()
