"""python -m ingest_server --port 8088 --db PATH --token DEVICE=TOKEN [--certfile C --keyfile K]"""

import argparse
import os
import sys

import uvicorn

from .app import create_app


def parse_tokens(items):
    tokens = {}
    for item in items:
        device, sep, token = item.partition("=")
        if not sep or not device or not token:
            raise ValueError("token %r is not DEVICE=TOKEN" % item)
        tokens[device] = token
    return tokens


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ingest_server", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8088)
    ap.add_argument("--db", required=True, help="SQLite file (created if missing)")
    ap.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="DEVICE=TOKEN",
        help="a device's bearer token (repeatable); also INGEST_TOKENS=dev1=tok1,dev2=tok2",
    )
    ap.add_argument("--certfile", help="TLS certificate chain (PEM): serve HTTPS")
    ap.add_argument("--keyfile", help="TLS private key (PEM)")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args(argv)
    env = os.environ.get("INGEST_TOKENS", "")
    try:
        tokens = parse_tokens([t for t in env.split(",") if t] + args.token)
    except ValueError as e:
        ap.error(str(e))
    if not tokens:
        ap.error("no device token: give --token DEVICE=TOKEN (or INGEST_TOKENS)")
    if bool(args.certfile) != bool(args.keyfile):
        ap.error("--certfile and --keyfile go together")
    app = create_app(args.db, tokens)
    scheme = "https" if args.certfile else "http"
    print(
        "ingest_server: %s://%s:%d (db %s, %d device token(s))" % (scheme, args.host, args.port, args.db, len(tokens))
    )
    sys.stdout.flush()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.certfile,
        ssl_keyfile=args.keyfile,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
