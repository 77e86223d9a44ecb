#!/usr/bin/python3
"""A hub written against boxwatch's AlertService with Debian's python3-grpcio:
a third-party client, sharing nothing with the C++ code but proto/.

Generates Python stubs from proto/ with protoc and grpc_python_plugin (Debian
packages protobuf-compiler and protobuf-compiler-grpc), subscribes over mutual
TLS, acknowledges as it goes, and prints one JSON line with the alert ids
received, then one with a GetContainer look-up. Exits non-zero with a reason
when anything fails.
"""
import argparse
import glob
import json
import os
import queue
import subprocess
import sys
import threading


def generate_stubs(proto_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    protos = sorted(glob.glob(os.path.join(proto_dir, "boxwatch", "v1", "*.proto")))
    if not protos:
        sys.exit(f"no .proto files under {proto_dir}")
    cmd = ["protoc", "-I", proto_dir, f"--python_out={out_dir}", f"--grpc_out={out_dir}",
           "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + protos
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("protoc failed: " + done.stderr)
    sys.path.insert(0, out_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    for flag in ("--proto-dir", "--work-dir", "--target", "--ca", "--cert", "--key", "--hub-id", "--regions",
                 "--container"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--count", type=int, required=True, help="alerts to wait for")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for them")
    args = ap.parse_args()

    generate_stubs(args.proto_dir, args.work_dir)
    import grpc  # noqa: E402  (after the path is set up)
    from boxwatch.v1 import alert_service_pb2 as svc, alert_service_pb2_grpc as svc_grpc

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(root_certificates=read(args.ca), private_key=read(args.key),
                                         certificate_chain=read(args.cert))
    channel = grpc.secure_channel(args.target, creds)
    stub = svc_grpc.AlertServiceStub(channel)

    outgoing = queue.Queue()
    outgoing.put(svc.SubscribeRequest(subscription=svc.Subscription(
        hub_id=args.hub_id, regions=args.regions.split(","), ack_window=64)))

    def requests():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    received = []
    call = stub.Subscribe(requests(), timeout=args.timeout)
    try:
        for response in call:
            if response.WhichOneof("kind") != "alert":
                continue
            envelope = response.alert
            received.append(envelope.alert.alert_id)
            outgoing.put(svc.SubscribeRequest(ack=svc.Ack(alert_ids=[envelope.alert.alert_id],
                                                          resume_token=envelope.resume_token)))
            if len(received) >= args.count:
                break
    except grpc.RpcError as e:
        sys.exit(f"Subscribe failed after {len(received)} alerts: {e.code().name}: {e.details()}")
    finally:
        outgoing.put(None)
        call.cancel()
    print(json.dumps({"received": received}), flush=True)

    found = stub.GetContainer(svc.GetContainerRequest(container_number=args.container), timeout=30)
    print(json.dumps({"container": found.container_number, "found": found.found,
                      "latest_alert": found.latest_alert.alert_id}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
