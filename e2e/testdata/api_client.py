#!/usr/bin/env python3
"""A client of orderly's HTTP/JSON API in Python's standard library only.

usage: api_client.py BASE_URL CA CERT KEY CUSTOMER

Places three orders for CUSTOMER, each with an Idempotency-Key, sends the
first one again (it must answer the same, applying nothing), reads the
customer's record, and prints one JSON line: what it saw.
"""
import json
import ssl
import sys
import urllib.error
import urllib.request


def call(ctx, method, url, body=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key is not None:
        req.add_header("Idempotency-Key", '"%s"' % key)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main():
    base, ca, cert, key, customer = sys.argv[1:6]
    customer = int(customer)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    placed = []
    for n in (1, 2, 3):
        status, body = call(ctx, "POST", base + "/v1/orders",
                            {"customer": customer, "number": n, "type": "regular"}, key="py-%d-%d" % (customer, n))
        if status != 201:
            raise SystemExit("order %d: %d %s" % (n, status, body))
        placed.append(body["index"])
    status, again = call(ctx, "POST", base + "/v1/orders",
                         {"customer": customer, "number": 1, "type": "regular"}, key="py-%d-1" % customer)
    status_rec, rec = call(ctx, "GET", base + "/v1/customers/%d?consistency=linearizable" % customer)
    status_missing, missing = call(ctx, "GET", base + "/v1/customers/2147483647")
    print(json.dumps({
        "indexes": placed,
        "replay_status": status, "replay_index": again.get("index"),
        "record_status": status_rec, "order_count": rec.get("order_count"), "last_order": rec.get("last_order"),
        "missing_status": status_missing, "missing_code": missing.get("code"),
    }))


if __name__ == "__main__":
    main()
