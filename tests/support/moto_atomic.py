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
       python3 moto_atomic.py --zygote

The zygote pays moto's start once per test binary rather than once per test: it imports moto
and the services the tests use, answers one read-only request per service (which creates their
Flask apps and region backends, as the first request of a fresh server would), then forks a
server for each `{"port": P, "log": PATH, "recording": PATH}` line on stdin and answers its pid.
`{"stop": PID}` kills one; the end of stdin (the test binary gone) kills them all. Each server
is a fork of the same untouched state, so it starts as empty as a fresh `moto_server`.
"""

import argparse
import copy
import ctypes
import json
import os
import signal
import sys
import threading
import traceback

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table

from moto.moto_api import recorder
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
from werkzeug.test import Client

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


# One read-only request per service the tests use: (signing name, target or None, body).
WARM_UP = [
    ("dynamodb", "DynamoDB_20120810.ListTables", "{}"),
    ("sqs", "AmazonSQS.ListQueues", "{}"),
    ("kms", "TrentService.ListKeys", "{}"),
    ("servicequotas", "ServiceQuotasV20190624.GetServiceQuota", '{"ServiceCode": "vpc", "QuotaCode": "L-0EA8095F"}'),
    ("cognito-idp", "AWSCognitoIdentityProviderService.ListUserPools", '{"MaxResults": 1}'),
    ("ec2", None, "Action=DescribeSecurityGroups&Version=2016-11-15"),
    ("sts", None, "Action=GetCallerIdentity&Version=2011-06-15"),
]
REGION = "eu-west-1"


def warm_up(app):
    client = Client(app)
    for service, target, body in WARM_UP:
        headers = {
            "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "Content-Type": "application/x-amz-json-1.0" if target else "application/x-www-form-urlencoded",
        }
        if target:
            headers["X-Amz-Target"] = target
        response = client.post("/", headers=headers, data=body)
        if response.status_code != 200:
            sys.exit(f"moto zygote: warming {service} answered {response.status_code}: {response.get_data(as_text=True)[:300]}")


def serve(host, port, app):
    run_simple(host, port, serialize_dynamodb(app), threaded=True)


def die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the zygote gone, its servers go too
    except (OSError, AttributeError):
        pass


def start_server(host, request, app):
    pid = os.fork()
    if pid:
        return pid
    try:
        die_with_parent()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        recorder._location = request["recording"]
        os.environ["MOTO_PORT"] = str(request["port"])
        serve(host, request["port"], app)
    except BaseException:
        # Into the server's log, which the test prints if the server never listens.
        traceback.print_exc()
    finally:
        os._exit(1)


def zygote(host):
    app = DomainDispatcherApplication(create_backend_app)
    warm_up(app)
    # Servers are reaped by the kernel; the zygote only forks and kills.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    servers = set()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if "stop" in request:
                pid = int(request["stop"])
                if pid in servers:
                    servers.discard(pid)
                    os.kill(pid, signal.SIGKILL)
                print("stopped", flush=True)
            else:
                pid = start_server(host, request, app)
                servers.add(pid)
                print(pid, flush=True)
    finally:
        for pid in servers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int)
    parser.add_argument("--zygote", action="store_true")
    args = parser.parse_args()
    backup_each_table_once()
    if args.zygote:
        zygote(args.host)
        return
    if args.port is None:
        parser.error("-p/--port is required without --zygote")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    serve(args.host, args.port, DomainDispatcherApplication(create_backend_app))


if __name__ == "__main__":
    main()
