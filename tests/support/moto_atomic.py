"""moto's server, with DynamoDB requests applied one at a time.

DynamoDB evaluates a write's condition and applies the write atomically, and a transaction's
actions all-or-nothing; EntryGuard's reference counts and concurrent-session limits rely on
that. moto's threaded server takes no lock around its DynamoDB backend, so two concurrent
conditional writes can both pass their condition there — a race real DynamoDB does not have.
This launcher serializes DynamoDB calls (every other service stays concurrent, so SQS long
polls do not block anything) and otherwise runs moto exactly as `moto_server` does.

Usage: python3 moto_atomic.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB = threading.Lock()


def serialize_dynamodb(app):
    def wsgi(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with DYNAMODB:
                # The body is produced inside the lock: the write happens while it is built.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wsgi


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialize_dynamodb(app), threaded=True)


if __name__ == "__main__":
    main()
