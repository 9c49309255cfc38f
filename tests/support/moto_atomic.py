"""moto's server, with DynamoDB requests applied one at a time.

DynamoDB evaluates a write's condition and applies the write atomically, and a transaction's
actions all-or-nothing; EntryGuard's reference counts and concurrent-session limits rely on
that. moto's threaded server takes no lock around its DynamoDB backend, so two concurrent
conditional writes can both pass their condition there — a race real DynamoDB does not have.
This launcher serializes DynamoDB calls (every other service stays concurrent, so SQS long
polls do not block anything), backs up each table once per transaction rather than once per
item (the same rollback, without moto's stalls under a storm), and otherwise runs moto exactly
as `moto_server` does.

Usage: python3 moto_atomic.py -H 127.0.0.1 -p PORT
"""

import argparse
import copy
import os
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB = threading.Lock()


class _TableBackupOncePerTransaction:
    """moto's `transact_write_items` deep-copies a table for every item of a transaction, to roll
    back; one copy per table is the same backup. Under a storm of transactions with dozens of
    items the repeated copies stalled moto for tens of seconds and grew it past 20 GB. Only
    `Table` copies made inside a transaction are shared; every other deep copy is moto's own.
    DynamoDB calls are serialized, so one transaction runs at a time."""

    def __init__(self):
        self.backups = None

    def deepcopy(self, obj, memo=None):
        if self.backups is None or not isinstance(obj, Table):
            return copy.deepcopy(obj, memo)
        if id(obj) not in self.backups:
            self.backups[id(obj)] = copy.deepcopy(obj)
        return self.backups[id(obj)]

    def __getattr__(self, name):
        return getattr(copy, name)


def backup_each_table_once():
    backups = _TableBackupOncePerTransaction()
    dynamodb_models.copy = backups
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, *args, **kwargs):
        backups.backups = {}
        try:
            return original(self, *args, **kwargs)
        finally:
            backups.backups = None

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items


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
    backup_each_table_once()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialize_dynamodb(app), threaded=True)


if __name__ == "__main__":
    main()
