"""A local Lambda Runtime API and the measurements made against it.

The emulator (class RuntimeApi) serves the three calls a custom runtime
makes: GET /2018-06-01/runtime/invocation/next, POST
/2018-06-01/runtime/invocation/{id}/response and .../error (and
/runtime/init/error). It binds 127.0.0.1 on a free port and hands out one
queued event per `next`.

    python bench/emulator.py coldstart --runs 20 --event E --env K=V ... -- CMD ...
    python bench/emulator.py rss --runs 3 --event E --env K=V ... -- CMD ...
    python bench/emulator.py connects --event E --env K=V ... -- CMD ...
    python bench/emulator.py suite --spec bench/coldstart.json --runs 25 --out-dir DIR

`coldstart` times each run from just before the process is spawned to the
moment its first answer has arrived. `rss` reads the process's peak
resident set (getrusage of the reaped child, ru_maxrss) after it answered
one invocation. `connects` runs once under strace and lists every connect()
the process made up to its first answer. Each prints one JSON object.

`suite` measures the cold start of every function of a spec file
round-robin (the order rotating each round, after one untimed round), so
that all of them see the same moments of a noisy shared machine, then runs
`connects` for each; it
writes DIR/coldstart-NAME.json and DIR/connects-NAME.json.
"""

import argparse
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class QuietServer(ThreadingHTTPServer):
    """Connections die with the process they belong to; that is no error."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


def quickack(sock):
    """Asks Linux to acknowledge what arrives next without delay (where the
    option exists)."""
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)
        except OSError:
            pass


class RuntimeApi:
    """One emulated Runtime API endpoint."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.closed = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, the body
            # can wait for the client's delayed ACK of the headers (up to
            # 40 ms on Linux), which would be timed as the function's.
            disable_nagle_algorithm = True

            def handle_one_request(self):
                # The client may send a request in two writes, too, and wait
                # for this side's ACK of the first: acknowledge at once.
                quickack(self.connection)
                super().handle_one_request()

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"not found"}')
                while not api.closed.is_set():
                    try:
                        body = api.events.get(timeout=0.05)
                        break
                    except queue.Empty:
                        continue
                else:
                    return
                request_id = str(uuid.uuid4())
                deadline_ms = int(time.time() * 1000) + 30_000
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id",
                                 "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                quickack(self.connection)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else self._chunked()
                at = time.perf_counter_ns()
                m = re.fullmatch(rf"{PREFIX}/invocation/([^/]+)/(response|error)", self.path)
                if m:
                    kind = m.group(2)
                elif self.path == f"{PREFIX}/init/error":
                    kind = "init-error"
                else:
                    return self._reply(404, b'{"errorMessage":"not found"}')
                self._reply(202, b'{"status":"OK"}')
                api.answers.put((kind, at, body))

            def _chunked(self):
                out = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def _reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def function_env(api, name, extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update(extra)
    return env


def run_once(cmd, env_extra, event, name, timeout, log, wrap=None):
    """Spawns cmd against a fresh emulator with one queued event; returns
    (milliseconds to the first answer, answer kind, answer body, peak RSS KiB,
    the emulator's port)."""
    api = RuntimeApi()
    try:
        api.events.put(event)
        env = function_env(api, name, env_extra)
        argv = (wrap or []) + cmd
        start = time.perf_counter_ns()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        try:
            kind, at, body = api.answers.get(timeout=timeout)
        except queue.Empty:
            kind, at, body = "timeout", time.perf_counter_ns(), b""
        elapsed_ms = (at - start) / 1e6
        # The process is now blocked in its next `next` call; stop it and
        # read its resource usage as its parent.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        return elapsed_ms, kind, body, usage.ru_maxrss, api.port
    finally:
        api.close()


def target(line):
    """host:port (or socket path) of one strace connect() line."""
    port = re.search(r"sin6?_port=htons\((\d+)\)", line)
    addr = re.search(r'inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"', line)
    path = re.search(r'sun_path="([^"]+)"', line)
    if path:
        return f"unix:{path.group(1)}"
    if addr and port:
        return f"{addr.group(1)}:{port.group(1)}"
    return line


def parse_env(pairs):
    out = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        out[key] = value
    return out


def suite(argv):
    p = argparse.ArgumentParser(prog="emulator.py suite")
    p.add_argument("--spec", required=True)
    p.add_argument("--runs", type=int, default=25)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args(argv)
    with open(a.spec) as f:
        functions = json.load(f)["functions"]
    events = {}
    for fn in functions:
        with open(fn["event"], "rb") as f:
            events[fn["name"]] = f.read()
    results = {fn["name"]: {"cmd": fn["cmd"], "event": fn["event"], "event_bytes": len(events[fn["name"]]),
                            "mode": "coldstart", "env": fn["env"], "runs_ms": [], "max_rss_kib": [],
                            "answers": []} for fn in functions}
    logs = {fn["name"]: open(os.path.join(a.out_dir, f"{fn['name']}.log"), "ab") for fn in functions}
    ok = True
    try:
        # One untimed round first: every binary and its libraries are then in
        # the page cache, as they are for all later rounds.
        for fn in functions:
            run_once(fn["cmd"], fn["env"], events[fn["name"]], fn["name"], a.timeout, logs[fn["name"]])
        for round_ in range(a.runs):
            shift = round_ % len(functions)
            for fn in functions[shift:] + functions[:shift]:
                r = results[fn["name"]]
                ms, kind, body, maxrss, _ = run_once(fn["cmd"], fn["env"], events[fn["name"]], fn["name"],
                                                     a.timeout, logs[fn["name"]])
                r["runs_ms"].append(ms)
                r["max_rss_kib"].append(maxrss)
                r["answers"].append(kind)
                r["last_answer"] = body[:300].decode("utf-8", "replace")
                ok &= kind == "response"
        for fn in functions:
            with open(os.path.join(a.out_dir, f"coldstart-{fn['name']}.json"), "w") as f:
                json.dump(results[fn["name"]], f)
            with tempfile.TemporaryDirectory() as tmp:
                trace = os.path.join(tmp, "trace")
                _, kind, _, _, port = run_once(fn["cmd"], fn["env"], events[fn["name"]], fn["name"], a.timeout,
                                               logs[fn["name"]],
                                               wrap=["strace", "-f", "-qq", "-e", "trace=connect", "-o", trace])
                with open(trace) as f:
                    lines = [line.strip() for line in f if "connect(" in line]
            targets = sorted({target(line) for line in lines})
            with open(os.path.join(a.out_dir, f"connects-{fn['name']}.json"), "w") as f:
                json.dump({"cmd": fn["cmd"], "mode": "connects", "answer": kind, "connects": lines,
                           "targets": targets, "emulator": f"127.0.0.1:{port}",
                           "other_targets": [t for t in targets if t != f"127.0.0.1:{port}"]}, f)
            ok &= kind == "response"
    finally:
        for log in logs.values():
            log.close()
    return 0 if ok else 1


def main():
    if sys.argv[1:2] == ["suite"]:
        return suite(sys.argv[2:])
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["coldstart", "rss", "connects"])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--event", required=True)
    p.add_argument("--name", default="bench")
    p.add_argument("--env", action="append")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--log", default=os.devnull, help="where the function's stdout/stderr go")
    argv = sys.argv[1:]
    if "--" not in argv:
        p.error("give the function's command after --")
    split = argv.index("--")
    a = p.parse_args(argv[:split])
    cmd = argv[split + 1:]
    with open(a.event, "rb") as f:
        event = f.read()
    env = parse_env(a.env)
    result = {"cmd": cmd, "event": a.event, "event_bytes": len(event), "mode": a.mode}
    with open(a.log, "ab") as log:
        if a.mode == "connects":
            with tempfile.TemporaryDirectory() as tmp:
                trace = os.path.join(tmp, "trace")
                ms, kind, body, _, port = run_once(cmd, env, event, a.name, a.timeout, log,
                                             wrap=["strace", "-f", "-qq", "-e", "trace=connect",
                                                   "-o", trace])
                with open(trace) as f:
                    lines = [line.strip() for line in f if "connect(" in line]
            targets = sorted({target(line) for line in lines})
            others = [t for t in targets if t != f"127.0.0.1:{port}"]
            result.update({"answer": kind, "connects": lines, "targets": targets,
                           "emulator": f"127.0.0.1:{port}", "other_targets": others})
        else:
            times, rss, kinds = [], [], []
            for _ in range(a.runs):
                ms, kind, body, maxrss, _ = run_once(cmd, env, event, a.name, a.timeout, log)
                times.append(ms)
                rss.append(maxrss)
                kinds.append(kind)
            result.update({"runs_ms": times, "max_rss_kib": rss, "answers": kinds,
                           "last_answer": body[:300].decode("utf-8", "replace")})
    print(json.dumps(result))
    return 0 if all(k == "response" for k in result.get("answers", [result.get("answer")])) else 1


if __name__ == "__main__":
    sys.exit(main())
