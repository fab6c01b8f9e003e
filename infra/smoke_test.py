#!/usr/bin/env python3
"""Smoke test of a deployed stack: the REST fallback and the WebSocket protocol, and with
--upload a real job from upload to the pushed COMPLETE (or ERROR), then the upload folder's
prefix snapshot (on a busy stack the upload may not be among the folder's 100 newest files).

    infra/smoke_test.py --stack mediaconvert-push --origin https://app.example.com [--upload clip.mp4]

Needs AWS credentials for the stack's account (boto3) and the `websockets` package; both are in
.venv-infra (source infra/tools.sh). Exits non-zero on the first unexpected answer.
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import websockets


def outputs(stack):
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def http(method, url, origin):
    request = urllib.request.Request(url, method=method, headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def token_for(secret, scope, ttl=3600):
    """A read token, as `token` issues it: {expires}.{hex HMAC-SHA256(secret, scope + "\\n" + expires)}."""
    if secret is None:
        return None
    expires = int(time.time()) + ttl
    return f"{expires}." + hmac.new(secret, f"{scope}\n{expires}".encode(), hashlib.sha256).hexdigest()


def with_token(message, token):
    return {**message, "token": token} if token else message


def check(label, got, expected):
    if got != expected:
        sys.exit(f"FAIL {label}: expected {expected!r}, got {got!r}")
    print(f"ok   {label}")


async def websocket_checks(url, origin, upload, bucket, prefix, secret):
    async with websockets.connect(url, origin=origin) as ws:
        async def ask(message):
            await ws.send(json.dumps(message) if isinstance(message, dict) else message)
            return json.loads(await asyncio.wait_for(ws.recv(), 15))

        check("ws ping", await ask({"action": "ping"}), {"type": "pong"})
        check("ws malformed", (await ask("not json"))["type"], "error")
        probe = f"{prefix}smoke-nothing-{int(time.time())}.mp4"
        if secret is not None:
            check("ws subscribe without token", await ask({"action": "subscribe", "input_file": probe}),
                  {"type": "error", "message": 'a "token" is required'})
        subscribe = with_token({"action": "subscribe", "input_file": probe}, token_for(secret, probe))
        check("ws subscribe", await ask(subscribe), {"type": "subscribed", "input_file": probe})
        check("ws unsubscribe", await ask({"action": "unsubscribe", "input_file": probe}), {"type": "unsubscribed", "input_file": probe})
        if not upload:
            return None
        key = f"{prefix}smoke-{int(time.time())}-{upload.split('/')[-1]}"
        subscribe = with_token({"action": "subscribe", "input_file": key}, token_for(secret, key))
        check("ws subscribe upload", await ask(subscribe), {"type": "subscribed", "input_file": key})
        boto3.client("s3").upload_file(upload, bucket, key)
        print(f"..   uploaded s3://{bucket}/{key}; waiting for pushes")
        progress = -1
        deadline = time.time() + 1800
        while time.time() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), 900))
            if message.get("type") != "status":
                continue
            if message["progress_rate"] < progress:
                sys.exit(f"FAIL progress went back: {progress} -> {message['progress_rate']}")
            progress = message["progress_rate"]
            print(f"..   {message['job_status']} {progress}%")
            if message["job_status"] in ("COMPLETE", "ERROR", "CANCELED"):
                return key, message
        sys.exit("FAIL no final status within 30 minutes")


async def prefix_snapshot_check(url, origin, prefix, key, final, secret):
    """A dashboard subscribing to the upload folder afterwards gets the finished upload at once."""
    async with websockets.connect(url, origin=origin) as ws:
        subscribe = with_token({"action": "subscribe", "prefix": prefix, "batch": True}, token_for(secret, prefix))
        await ws.send(json.dumps(subscribe))
        check("ws subscribe prefix", json.loads(await asyncio.wait_for(ws.recv(), 15)), {"type": "subscribed", "prefix": prefix})
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 15))
        states = {u["input_file"]: u["job_status"] for u in snapshot.get("updates", [])}
        check("ws prefix snapshot has the upload", (snapshot.get("type"), states.get(key)), ("statuses", final["job_status"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="mediaconvert-push")
    parser.add_argument("--origin", required=True, help="an origin ALLOWED_ORIGINS accepts")
    parser.add_argument("--upload", help="a video to run through the whole pipeline")
    parser.add_argument("--prefix", default="uploads/", help="the stack's UploadPrefix")
    args = parser.parse_args()

    out = outputs(args.stack)
    rest, ws = out["RestApiUrl"], out["WebSocketUrl"]
    secret = None
    if "TokenSecretArn" in out:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=out["TokenSecretArn"])["SecretString"].encode()
    check("rest OPTIONS", http("OPTIONS", f"{rest}/media/status", args.origin)[0], 200)
    if secret is None:
        check("rest unknown job", http("GET", f"{rest}/media/status?job_id=smoke-none", args.origin),
              (422, '{"success": false, "message": "Not found item."}'))
    else:
        check("rest without token", http("GET", f"{rest}/media/status?job_id=smoke-none", args.origin),
              (403, '{"success": false, "message": "a \\"token\\" is required"}'))
    check("rest missing parameter", http("GET", f"{rest}/media/job_id", args.origin),
          (400, '{"success": false, "message": "Not found parameter."}'))
    result = asyncio.run(websocket_checks(ws, args.origin, args.upload, out["UploadBucket"], args.prefix, secret))
    if result:
        key, final = result
        token = token_for(secret, key)
        query = urllib.parse.urlencode({"input_file": key, **({"token": token} if token else {})})
        status, body = http("GET", f"{rest}/media/status?{query}", args.origin)
        check("rest agrees with the push", (status, json.loads(body)["job_status"]), (200, final["job_status"]))
        asyncio.run(prefix_snapshot_check(ws, args.origin, args.prefix, key, final, secret))
    print("smoke test passed")


if __name__ == "__main__":
    main()
