#!/usr/bin/python3
"""The control room end to end, on a real Apache Kafka broker.

usage: control_room_test.py BOXWATCH_BINARY OUTDIR
env:   BOXWATCH_KAFKA_BOOTSTRAP_FILE  file holding the broker's bootstrap list
                                      (scripts/kafka start --dir D writes D/bootstrap)

What runs: `boxwatch topics create` (a fresh prefix), one worker, one
dispatcher (plaintext gRPC on loopback) and one hub serving the control room
over HTTPS with a test CA, a server certificate for 127.0.0.1 and an accounts
file (officers ofc-a and ofc-b of different regions, supervisor sup, an API
token). Traffic comes from `boxwatch simulate`, plus one hand-made manifest
whose goods description and notify party carry a script injection.

What is checked:
  1. browser (Debian's chromium, headless, through chromedriver and Selenium;
     the test certificate pinned by its SPKI hash, no blanket certificate
     override): log in as sup; a CRITICAL alert appears live in the queue
     (no reload); its case file (explanation, manifest, map with the track);
     an outcome reported through the form reaches the outcomes topic and the
     audit trail; the injected manifest text is shown literally and never
     runs; the audit view; log out. No CSP violation, no JS error.
  2. HTTP security: 401 without a session on every API route, region
     isolation (404 and never listed), CSRF, login lockout (429 with
     Retry-After), no plaintext HTTP on the HTTPS port, CSP and HSTS headers,
     the session cookie's flags.
  3. load: 500 live-feed clients at once while alerts stream in, each gets at
     least one `event: alert`; the hub's RSS stays under 1 GiB.
Screenshots, logs and load.json go to OUTDIR. Exit 0 when everything holds,
1 otherwise (every failed check says what was expected and what was seen).
"""
import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REGIONS = ["mekong", "central-asia", "caucasus", "europe", "gulf", "south-asia", "east-asia", "southeast-asia",
           "latin-america"]
OFC_A_REGIONS = ["mekong", "southeast-asia"]
OFC_B_REGIONS = ["caucasus"]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
LOAD_CLIENTS = 500
RSS_LIMIT = 1 << 30
DAY_MS = 86400000
# Records per second from `boxwatch simulate`: days of event time sent at once to a running worker merge
# in fetch order, not event-time order (docs/worker.md, Merge), so the traffic is paced as the demo paces it.
SIM_RATE = 2000

T0 = time.time()


def log(msg):
    print(f"[control_room {time.strftime('%H:%M:%S')} +{time.time() - T0:5.1f}s] {msg}", flush=True)


class Fatal(Exception):
    """A failure after which the rest of the test cannot run."""


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, cond, what, expected="", seen=""):
        if cond:
            self.passed += 1
            print(f"PASS {what}", flush=True)
        else:
            msg = f"{what}: expected {expected}; saw {seen}"
            self.failures.append(msg)
            print(f"FAIL {msg}", flush=True)
        return bool(cond)

    def require(self, cond, what, expected="", seen=""):
        if not self.check(cond, what, expected, seen):
            raise Fatal(f"{what}: expected {expected}; saw {seen}")


CHECKS = Checks()


def clip(text, n=300):
    text = str(text)
    return text if len(text) <= n else text[:n] + f"… ({len(text)} chars)"


def wait_until(fn, timeout, what, interval=0.25):
    """Polls fn() until it returns something truthy; raises Fatal naming `what` and the last value or error."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Fatal:
            raise
        except Exception as e:  # a stale element, a connection refused: keep polling
            last = f"{type(e).__name__}: {clip(e, 200)}"
        if time.time() >= deadline:
            raise Fatal(f"{what}: not within {timeout:.0f} s (last seen: {clip(last)})")
        time.sleep(interval)


def run(cmd, input=None, timeout=120):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise Fatal(f"{' '.join(cmd[:4])} … exited {r.returncode}: {clip(r.stderr.strip(), 2000)}")
    return r.stdout


# --------------------------------------------------------------- processes

class Proc:
    """A long-running process: stdout lines collected (JSON event lines), stderr to a log file."""

    def __init__(self, name, args, logdir):
        self.name = name
        self.err_path = os.path.join(logdir, f"{name}.stderr.log")
        self.err = open(self.err_path, "w")
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL, text=True)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait_event(self, event, timeout=120):
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for line in self.lines:
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        continue
                    if doc.get("event") == event:
                        return doc
                if self.p.poll() is not None:
                    raise Fatal(f"{self.name} exited with {self.p.returncode} before its '{event}' line; "
                                f"stderr in {self.err_path}")
                left = deadline - time.time()
                if left <= 0:
                    raise Fatal(f"{self.name}: no '{event}' line within {timeout} s; stdout so far: {self.lines}")
                self.cv.wait(min(left, 0.5))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


# --------------------------------------------------------------- set-up

def read_bootstrap():
    path = os.environ.get("BOXWATCH_KAFKA_BOOTSTRAP_FILE")
    if not path:
        sys.exit("control_room_test: BOXWATCH_KAFKA_BOOTSTRAP_FILE is not set. This test needs a real Kafka "
                 "broker: run it through ctest (fixture kafka) or start one with "
                 "`scripts/kafka start --dir D` and set BOXWATCH_KAFKA_BOOTSTRAP_FILE=D/bootstrap")
    try:
        with open(path) as f:
            bootstrap = f.read().strip()
    except OSError as e:
        sys.exit(f"control_room_test: cannot read BOXWATCH_KAFKA_BOOTSTRAP_FILE={path}: {e}")
    if not bootstrap:
        sys.exit(f"control_room_test: BOXWATCH_KAFKA_BOOTSTRAP_FILE={path} is empty")
    return path, bootstrap


def kafka_libs(bootstrap_file):
    """The Kafka client jars: the running broker's own classpath (scripts/kafka puts node-I.pid beside the
    bootstrap file), else scripts/kafka's cache."""
    kdir = os.path.dirname(os.path.abspath(bootstrap_file))
    try:
        with open(os.path.join(kdir, "node-1.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode().split("\0")
        cp = argv[argv.index("-cp") + 1]
        if os.path.isdir(cp.rstrip("*").rstrip("/")):
            return cp.rstrip("*").rstrip("/")
    except (OSError, ValueError, IndexError):
        pass
    cache = os.environ.get("BOXWATCH_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "boxwatch")
    version = os.environ.get("BOXWATCH_KAFKA_VERSION") or "4.4.0"
    libs = os.path.join(cache, f"kafka-{version}", "libs")
    if not os.path.isdir(libs):
        raise Fatal(f"no Kafka client jars: not the broker's classpath (pid file in {kdir}) nor {libs}")
    return libs


def make_pki(work):
    """A test CA and a server certificate for 127.0.0.1 (SAN IP:127.0.0.1); returns paths and the SPKI pin."""
    pki = os.path.join(work, "pki")
    os.makedirs(pki)
    ca_key, ca_crt = os.path.join(pki, "ca.key"), os.path.join(pki, "ca.crt")
    key, csr, crt = (os.path.join(pki, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(pki, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
                "basicConstraints=critical,CA:FALSE\n")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=boxwatch control room test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
         "-days", "2", "-extfile", ext])
    # Chromium's --ignore-certificate-errors-spki-list: base64 SHA-256 of the DER SubjectPublicKeyInfo.
    pub = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-pubkey"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         check=True).stdout
    spki = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True,
                          check=True).stdout
    return {"ca": ca_crt, "cert": crt, "key": key, "spki": base64.b64encode(spki).decode()}


def make_accounts(binary, work):
    path = os.path.join(work, "accounts")
    passwords = {}
    for name, role, regions in (("ofc-a", "officer", OFC_A_REGIONS), ("ofc-b", "officer", OFC_B_REGIONS),
                                ("sup", "supervisor", ["*"])):
        passwords[name] = "pw-" + secrets.token_urlsafe(18)
        run([binary, "hub", "users", "add", "--accounts", path, "--role", role, "--regions", ",".join(regions), name],
            input=passwords[name] + "\n")
    token = run([binary, "hub", "tokens", "add", "--accounts", path, "--role", "officer", "--regions", "*",
                 "feed-client"]).strip()
    if not token:
        raise Fatal("`boxwatch hub tokens add` printed no token")
    return path, passwords, token


def container_number(owner, serial):
    """ISO 6346: owner code (4 letters, ending U) + 6 digits + check digit."""
    values, v = {}, 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if v % 11 == 0:
            v += 1
        values[ch] = v
        v += 1
    body = f"{owner}{serial:06d}"
    total = sum((values[c] if c.isalpha() else int(c)) << i for i, c in enumerate(body))
    return body + str(total % 11 % 10)


# --------------------------------------------------------------- HTTP

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Fatal(f"not JSON (status {self.status}): {clip(self.body)}")

    def __repr__(self):
        return f"{self.status} {clip(self.body.decode(errors='replace'), 200)}"


class Hub:
    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)

    def call(self, method, path, body=None, cookie=None, csrf=None, token=None, headers=None, timeout=30):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if cookie:
            h["Cookie"] = f"bw_session={cookie}"
        if csrf:
            h["X-CSRF-Token"] = csrf
        if token:
            h["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            if r.getheader("Content-Type", "").startswith("text/event-stream"):
                payload = r.read1(4096) if hasattr(r, "read1") else b""  # a live feed: do not wait for its end
            else:
                payload = r.read()
            return Resp(r.status, r.getheaders(), payload)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)


class Session:
    def __init__(self, resp):
        self.resp = resp
        self.set_cookie = next((c for c in resp.all("Set-Cookie") if c.startswith("bw_session=")), "")
        self.cookie = self.set_cookie.split(";", 1)[0].split("=", 1)[1] if self.set_cookie else ""
        self.csrf = resp.json().get("csrf_token", "") if resp.status == 200 else ""


def login(hub, user, password):
    r = hub.call("POST", "/api/session", {"username": user, "password": password})
    CHECKS.require(r.status == 200, f"login as {user}", "200", r)
    return Session(r)


def list_all(hub, query, **auth):
    """Every alert the caller may see for `query`, through the pages."""
    out, offset = [], 0
    while True:
        r = hub.get(f"/api/alerts?{query}&limit=500&offset={offset}", **auth)
        if r.status != 200:
            raise Fatal(f"GET /api/alerts?{query}: {r}")
        page = r.json()
        out += page["alerts"]
        offset += len(page["alerts"])
        if not page["alerts"] or offset >= page["total"]:
            return out, page["total"]


# --------------------------------------------------------------- Kafka helpers

class KafkaTool:
    """KafkaRecords.java on the broker's client jars (boxwatch has no topic reader)."""

    def __init__(self, libs, work):
        self.classes = os.path.join(work, "java-classes")
        os.makedirs(self.classes)
        self.cp = f"{libs}/*:{self.classes}"
        self.log4j = os.path.join(work, "java-log4j2.properties")
        with open(self.log4j, "w") as f:
            f.write("status = error\nappender.e.type = Console\nappender.e.name = e\nappender.e.target = SYSTEM_ERR\n"
                    "appender.e.layout.type = PatternLayout\nappender.e.layout.pattern = %p %m (%c)%n\n"
                    "rootLogger.level = error\nrootLogger.appenderRef.e.ref = e\n")
        self.compile = subprocess.Popen(["javac", "-cp", f"{libs}/*", "-d", self.classes,
                                         os.path.join(HERE, "KafkaRecords.java")],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def _java(self, args, input=None):
        if self.compile is not None:
            out, _ = self.compile.communicate(timeout=180)
            if self.compile.returncode != 0:
                raise Fatal(f"javac KafkaRecords.java failed: {out}")
            self.compile = None
        r = subprocess.run(["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                            f"-Dlog4j2.configurationFile=file:{self.log4j}", "-cp", self.cp, "KafkaRecords", *args],
                           input=input, capture_output=True, timeout=180)
        if r.returncode != 0:
            raise Fatal(f"KafkaRecords {args[0]} failed ({r.returncode}): {clip(r.stderr.decode(errors='replace'), 2000)}")
        return r.stdout.decode()

    def produce(self, bootstrap, topic, key, timestamp_ms, value, headers=()):
        out = self._java(["produce", bootstrap, topic, key, str(timestamp_ms), *headers], input=value)
        return json.loads(out.strip().splitlines()[-1])

    def dump(self, bootstrap, topic):
        return [json.loads(line) for line in self._java(["dump", bootstrap, topic]).splitlines() if line.strip()]


def pb_fields(data):
    """Protobuf wire format → {field number: [values]} (varints as int, length-delimited as bytes)."""
    out, i = {}, 0

    def varint(i):
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, i

    while i < len(data):
        key, i = varint(i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(i)
        elif wire == 2:
            n, i = varint(i)
            v, i = data[i:i + n], i + n
        elif wire == 1:
            v, i = data[i:i + 8], i + 8
        elif wire == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.setdefault(field, []).append(v)
    return out


def decode_outcome(value):
    """InspectionOutcome (outcome.proto) from binary protobuf or its JSON mapping, as a dict."""
    if value[:1] == b"{":
        doc = json.loads(value)
        return {"outcome_id": doc.get("outcomeId", doc.get("outcome_id", "")),
                "alert_id": doc.get("alertId", doc.get("alert_id", "")),
                "officer_unit": doc.get("officerUnit", doc.get("officer_unit", "")),
                "result": doc.get("result"), "categories": doc.get("seizureCategories", doc.get("seizure_categories")),
                "quantity": doc.get("quantityDescription", doc.get("quantity_description", "")),
                "notes": doc.get("notes", ""), "final": doc.get("final", False)}
    f = pb_fields(value)
    s = lambda n: f[n][-1].decode() if n in f else ""  # noqa: E731
    cats = []
    for v in f.get(8, []):
        if isinstance(v, int):
            cats.append(v)
        else:  # packed
            j = 0
            while j < len(v):
                x = shift = 0
                while True:
                    b = v[j]
                    j += 1
                    x |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                cats.append(x)
    names = {1: "RESULT_NO_FINDING", 2: "RESULT_DISCREPANCY", 3: "RESULT_SEIZURE"}
    cat_names = {1: "SEIZURE_CATEGORY_DRUGS"}
    return {"outcome_id": s(2), "alert_id": s(3), "officer_unit": s(6),
            "result": names.get(f.get(7, [0])[-1], f.get(7, [0])[-1]),
            "categories": [cat_names.get(c, c) for c in cats], "quantity": s(9), "notes": s(10),
            "final": bool(f.get(11, [0])[-1])}


# --------------------------------------------------------------- browser

class Browser:
    def __init__(self, spki, work):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as e:
            raise Fatal(f"cannot import selenium ({e}): run with Debian's /usr/bin/python3 and python3-selenium")
        for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
            if not os.path.exists(tool):
                raise Fatal(f"{tool} is missing: install Debian's chromium and chromium-driver (scripts/setup does)")
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=work)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1400,1000", "--lang=en-US", f"--user-data-dir={self.profile}",
                     # Trust exactly this test certificate (by its public key), nothing else.
                     f"--ignore-certificate-errors-spki-list={spki}"):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        except Exception as e:
            raise Fatal(f"cannot start chromium through chromedriver: {e}")
        self.driver.set_page_load_timeout(60)
        self.logs = []
        self.printed = False

    def collect_logs(self):
        try:
            for entry in self.driver.get_log("browser"):
                self.logs.append(entry)
        except Exception as e:
            self.logs.append({"level": "INFO", "source": "test", "message": f"get_log failed: {e}"})

    def print_logs(self):
        print("---- browser console (driver.get_log('browser')) ----")
        for e in self.logs:
            print(f"  {e.get('level')} {e.get('source', '')}: {e.get('message')}")
        print("---- end of browser console ----", flush=True)
        self.printed = True

    def css(self, selector):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector, timeout=30, visible=True):
        def find():
            els = self.css(selector)
            return els[0] if els and (not visible or els[0].is_displayed()) else None
        return wait_until(find, timeout, f"element {selector}{' visible' if visible else ''}")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, path, full=False):
        if full:
            h = int(self.js("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)"))
            self.driver.set_window_size(1400, max(1000, min(h + 40, 6000)))
            time.sleep(0.5)
        self.driver.save_screenshot(path)
        if full:
            self.driver.set_window_size(1400, 1000)
        log(f"screenshot {path}")

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def browser_problems(logs):
    """CSP violations and JS errors among the console entries (network errors such as the expected 401 of the
    session probe are reported but allowed)."""
    bad = []
    for e in logs:
        msg, level, source = e.get("message", ""), e.get("level", ""), e.get("source", "")
        if "Content Security Policy" in msg or "Refused to" in msg:
            bad.append(f"CSP violation: {msg}")
        elif source == "javascript" or "Uncaught" in msg:
            bad.append(f"JS error: {msg}")
        elif level == "SEVERE" and source not in ("network",):
            bad.append(f"console error ({source}): {msg}")
    return bad


# --------------------------------------------------------------- the test

class Env:
    pass


def start_pipeline(env):
    prefix = env.prefix
    run([env.binary, "topics", "create", "--bootstrap", env.bootstrap, "--prefix", prefix, "--partitions", "2",
         "--event-retention-ms", "-1", "--alert-retention-ms", "-1"])
    log(f"topics created with prefix {prefix}")
    cfg = os.path.join(env.work, "worker.yaml")
    with open(cfg, "w") as f:
        f.write(f'bootstrap: "{env.bootstrap}"\ninstance_id: "cr-worker-1"\ngroup_id: "cr-workers-{prefix}"\n'
                f'topic_prefix: "{prefix}"\nstate_dir: "{env.work}/worker-state"\nmetrics_listen: "127.0.0.1:0"\n'
                f'idle_flush_ms: 2000\n')
    env.worker = Proc("worker", [env.binary, "worker", "--config", cfg], env.logs)
    env.procs.append(env.worker)
    hubs = os.path.join(env.work, "hubs.yaml")
    with open(hubs, "w") as f:
        f.write(f"hubs:\n  - id: hub-cr\n    regions: [{', '.join(REGIONS)}]\n")
    env.dispatcher = Proc("dispatcher", [env.binary, "dispatcher", "--bootstrap", env.bootstrap, "--topic-prefix",
                                         prefix, "--listen", "127.0.0.1:0", "--hubs", hubs, "--insecure",
                                         "--metrics-listen", "127.0.0.1:0"], env.logs)
    env.procs.append(env.dispatcher)
    env.worker.wait_event("started")
    dport = env.dispatcher.wait_event("started")["grpc_port"]
    env.hub_proc = Proc("hub", [env.binary, "hub", "--hub-id", "hub-cr", "--dispatcher", f"127.0.0.1:{dport}",
                                "--insecure", "--regions", ",".join(REGIONS), "--state-dir",
                                os.path.join(env.work, "hub-state"), "--http-listen", "127.0.0.1:0",
                                "--http-cert", env.pki["cert"], "--http-key", env.pki["key"],
                                "--accounts", env.accounts, "--metrics-listen", "127.0.0.1:0"], env.logs)
    env.procs.append(env.hub_proc)
    env.port = env.hub_proc.wait_event("started")["http_port"]
    env.hub = Hub(env.port, env.pki["ca"])
    env.hub_proc.wait_event("subscribed", timeout=60)
    status = wait_until(lambda: (lambda r: r.status == 200 and r.json().get("connected") and r.json())(
        env.hub.get("/api/status", token=env.token)), 60, "hub status connected")
    log(f"worker, dispatcher (gRPC {dport}) and hub (HTTPS {env.port}) up; hub regions {status['regions']}")


def simulate(env, start_ms, containers, seed, name):
    args = [env.binary, "simulate", "--bootstrap", env.bootstrap, "--topic-prefix", env.prefix, "--containers",
            str(containers), "--seed", str(seed), "--start", str(start_ms), "--outcome-rate", "0",
            "--gps-per-container", "40", "--rate", str(SIM_RATE)]
    err = open(os.path.join(env.logs, f"{name}.stderr.log"), "w")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    p.log = err
    env.sims.append(p)
    return p


def finish_simulate(p, name):
    out, _ = p.communicate(timeout=180)
    p.log.close()
    CHECKS.require(p.returncode == 0, f"{name} exits 0", "0", f"{p.returncode}, stderr in {p.log.name}")
    return json.loads(out.strip().splitlines()[-1])


def produce_xss_manifest(env):
    """One manifest of our own through the simulator's input path (JSON mapping with content-type header):
    leaf tobacco at 1,400 kg a package (goods.sensitive_hs + goods.weight_implausible: HIGH, not critical, so
    the queue has no CRITICAL row before the traffic) and the injection in the goods and the notify party."""
    container = container_number("TSTU", 424242)
    declared = (int(time.time() * 1000) - 2 * DAY_MS) // 1000 * 1000
    manifest = {
        "containerNumber": container, "version": 1, "billOfLading": "BLXSS424242",
        "shipper": {"name": "Control Room Test Exports Co", "country": "VN"},
        "consignee": {"name": "Control Room Test Imports LLC", "country": "LA"},
        "notifyParty": {"name": XSS, "country": "LA"},
        "goods": [{"hsCode": "240110", "description": XSS, "packages": 10, "packageType": "CT",
                   "grossWeightKg": 14000}],
        "sealNumbers": ["SL424242"], "vesselImo": "9435328", "vesselName": "TEST CARRIER", "voyage": "042W",
        "portOfLoading": "VNSGN", "portOfDischarge": "THLCH", "finalDestination": "LAVTE",
        "etaMs": str(declared + 3 * DAY_MS), "declaredAtMs": str(declared),
        "freightPayment": "FREIGHT_PAYMENT_PREPAID", "containerSizeType": "45G1", "tareWeightKg": 3800,
    }
    meta = env.kafka.produce(env.bootstrap, f"{env.prefix}boxwatch.manifests", container, declared,
                             json.dumps(manifest).encode(), ["content-type=application/json"])
    log(f"XSS manifest for {container} produced to partition {meta['partition']} offset {meta['offset']}")

    def stored():
        alerts = env.hub.get(f"/api/alerts?q={container}", token=env.token).json()["alerts"]
        return alerts[0] if alerts else None
    summary = wait_until(stored, 90, f"an alert of {container} (the injected manifest) at the hub")
    full = env.hub.get(f"/api/alerts?q={container}&format=full", token=env.token).json()["alerts"][0]
    goods = full.get("context", {}).get("manifest", {}).get("goods", [{}])
    CHECKS.require(goods and goods[0].get("description") == XSS, "the hub stores the injected goods text verbatim",
                   repr(XSS), repr(goods[0].get("description") if goods else None))
    log(f"XSS alert {summary['alert_id']} ({summary['priority']}) stored at the hub")
    return summary


def browser_test(env, b, xss_alert):
    from selenium.webdriver.support.ui import Select
    d = b.driver
    base = f"https://127.0.0.1:{env.port}/"
    d.get(base)
    CHECKS.require(d.current_url.startswith(base), "the control room loads over HTTPS with the pinned test cert",
                   base, f"{d.current_url} (title {d.title!r})")
    b.one("#login-form", 30)
    b.one("#login-username").send_keys("sup")
    b.shot(os.path.join(env.out, "login.png"))
    b.one("#login-password").send_keys(env.passwords["sup"])
    b.one("#login-submit").click()
    b.one("#app-header", 30)
    wait_until(lambda: " of " in (b.css("#queue-range") or [None])[0].text, 30, "the queue's first page loaded")
    CHECKS.check(b.one("#user-name").text == "sup", "header shows the logged-in user", "sup", b.one("#user-name").text)
    before = len(b.css("#queue tr.priority-critical"))
    CHECKS.require(before == 0, "no CRITICAL row before the traffic starts", 0, before)
    b.js("window.__marker = 1;")
    # The console is captured (else "no CSP violation, no JS error" below would prove nothing).
    b.js("console.info('control_room_test: console capture probe');")
    b.collect_logs()
    CHECKS.require(any("console capture probe" in e.get("message", "") for e in b.logs),
                   "the browser console is captured", "the probe message in driver.get_log('browser')",
                   b.logs[-5:])
    b.logs = [e for e in b.logs if "console capture probe" not in e.get("message", "")]

    log("browser shows the queue; producing simulated traffic (300 containers, seed 7)")
    start = (int(time.time() * 1000) - 9 * DAY_MS) // 1000 * 1000
    t_sim = time.time()
    sim = simulate(env, start, 300, 7, "simulate-1")
    rows = wait_until(lambda: b.css("#queue tr.priority-critical"), 90,
                      "a row with class priority-critical in #queue (live, no reload)", interval=0.5)
    log(f"CRITICAL row appeared {time.time() - t_sim:.1f} s after the traffic started")
    marker = b.js("return window.__marker;")
    CHECKS.check(marker == 1, "a CRITICAL alert appeared in the queue without a page reload",
                 "window.__marker still 1", marker)
    b.shot(os.path.join(env.out, "queue.png"))
    sim_result = finish_simulate(sim, "simulate (browser phase)")
    log(f"simulated: {sim_result}")

    # Open the row that appeared.
    row = rows[0]
    clicked_id = row.get_attribute("data-alert-id")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", row)
    row.click()
    wait_until(lambda: b.js("return location.hash;").startswith("#/alerts/"), 15, "the row click opens #/alerts/…")
    opened = urllib.parse.unquote(b.js("return location.hash;")[len("#/alerts/"):])
    CHECKS.check(opened == clicked_id, "clicking the row opens its alert", clicked_id, opened)
    b.one("#alert-detail #explanation", 30)

    # Prefer a CRITICAL alert whose case file has a GPS track (for the map) and a manifest.
    crit = env.hub.get("/api/alerts?priority=CRITICAL&format=full&limit=200", token=env.token).json()["alerts"]
    by_id = {a["alert_id"]: a for a in crit}
    CHECKS.require(clicked_id in by_id, "the clicked alert is a CRITICAL alert at the hub", clicked_id,
                   sorted(by_id)[:10])

    def rank(a):
        ctx = a.get("context", {})
        return (bool(ctx.get("track")), bool(ctx.get("manifest")))
    target = by_id[clicked_id]
    best = max(crit, key=lambda a: (rank(a), a["alert_id"] == clicked_id))
    if rank(best) > rank(target):
        log(f"{clicked_id} has track/manifest {rank(target)}; opening {best['alert_id']} ({rank(best)})")
        target = best
        b.js("location.hash = arguments[0];", "#/alerts/" + urllib.parse.quote(target["alert_id"], safe=""))
    alert_id = target["alert_id"]
    has_track = bool(target.get("context", {}).get("track"))
    wait_until(lambda: b.one("#alert-id").text == alert_id, 30, f"the detail of {alert_id}")
    b.one("#explanation", 30)
    time.sleep(0.5)
    indicators = len(b.css("#explanation li.indicator"))
    CHECKS.check(indicators >= 1, "#explanation lists the indicators", ">= 1 li.indicator", indicators)
    manifest_text = b.one("#manifest").text
    goods_rows = len(b.css("#manifest #goods-table tbody tr"))
    bl = target.get("context", {}).get("manifest", {}).get("bill_of_lading")
    CHECKS.check(bl and bl in manifest_text and goods_rows >= 1, "#manifest shows the manifest in force",
                 f"the alert's manifest (bill of lading {bl}) with goods rows",
                 f"{goods_rows} goods rows, text {clip(manifest_text, 200)!r}; the alert's context holds "
                 f"{sorted(target.get('context', {}))}")
    svg = b.css("#map svg#map-svg")
    CHECKS.check(len(svg) == 1, "#map contains svg#map-svg", 1, len(svg))
    tracks = len(b.css("#map svg#map-svg polyline.track, #map svg#map-svg path.track"))
    if has_track:
        CHECKS.check(tracks >= 1, f"the map draws the track of {alert_id} "
                     f"({len(target['context']['track'])} points)", ">= 1 polyline/path.track", tracks)
    else:
        log(f"no CRITICAL alert carries a track: the map's track is not checked (saw {tracks} .track)")
    b.shot(os.path.join(env.out, "detail.png"), full=True)
    map_el = b.one("#map")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", map_el)
    time.sleep(0.3)
    map_el.screenshot(os.path.join(env.out, "map.png"))
    log(f"screenshot {os.path.join(env.out, 'map.png')}")

    # Report a seizure through the form.
    Select(b.one("#outcome-result")).select_by_value("SEIZURE")
    drugs = b.one("#outcome-cat-DRUGS")
    if not drugs.is_selected():
        d.execute_script("arguments[0].scrollIntoView({block: 'center'});", drugs)
        drugs.click()
    b.one("#outcome-quantity").send_keys("120 kg cocaine")
    notes = "found behind the false front wall <b>not bold</b>"
    b.one("#outcome-notes").send_keys(notes)
    submit = b.one("#outcome-submit")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", submit)
    submit.click()
    text = wait_until(lambda: (lambda t: t if "Outcome recorded" in t or "Not recorded" in t else None)(
        b.one("#outcome-result-text").text), 30, "#outcome-result-text after submitting the outcome")
    m = re.search(r"Outcome recorded: (\S+)", text)
    outcome_id = m.group(1) if m else ""
    CHECKS.require(re.fullmatch(re.escape(alert_id) + r"-sup-\d+", outcome_id),
                   "#outcome-result-text shows the outcome id", f"'Outcome recorded: {alert_id}-sup-<ms>'", text)
    log(f"outcome {outcome_id} reported")

    # (a) the outcome reached the outcomes topic.
    def on_topic():
        for rec in env.kafka.dump(env.bootstrap, f"{env.prefix}boxwatch.outcomes"):
            o = decode_outcome(base64.b64decode(rec["value_b64"]))
            if o["outcome_id"] == outcome_id:
                return o
        return None
    found = wait_until(on_topic, 60, f"outcome {outcome_id} on {env.prefix}boxwatch.outcomes", interval=2)
    CHECKS.check(found["alert_id"] == alert_id and found["officer_unit"] == "sup"
                 and found["result"] in ("RESULT_SEIZURE", 3) and "SEIZURE_CATEGORY_DRUGS" in found["categories"]
                 and found["quantity"] == "120 kg cocaine" and found["notes"] == notes and found["final"],
                 "the outcomes topic holds the outcome as reported",
                 f"alert {alert_id}, unit sup, SEIZURE, DRUGS, '120 kg cocaine', the notes, final", found)
    summary = env.hub.get(f"/api/alerts?q={target['container_number']}&limit=500", token=env.token).json()["alerts"]
    status = next((s["workflow"]["status"] for s in summary if s["alert_id"] == alert_id), None)
    CHECKS.check(status == "closed", "a final outcome closes the alert", "closed", status)

    # (b) the audit trail.
    sup = login(env.hub, "sup", env.passwords["sup"])
    r = env.hub.get(f"/api/audit?alert_id={urllib.parse.quote(alert_id)}", cookie=sup.cookie)
    entries = r.json().get("entries", []) if r.status == 200 else []
    actions = {(e["user"], e["action"]) for e in entries}
    CHECKS.check(("sup", "view") in actions and ("sup", "outcome") in actions,
                 f"GET /api/audit?alert_id={alert_id} has sup's view and outcome", "(sup, view) and (sup, outcome)",
                 f"{r.status} {sorted(actions)}")
    outcome_entry = next((e for e in entries if e["action"] == "outcome"), {})
    CHECKS.check(outcome_id in outcome_entry.get("detail", ""), "the audit's outcome entry names the outcome id",
                 outcome_id, outcome_entry.get("detail"))
    b.js("location.hash = '#/audit';")
    wait_until(lambda: b.css("#audit #audit-body tr td"), 30, "rows in #audit-body")

    def outcome_row():
        return [r for r in b.css("#audit-body tr") if alert_id in r.text and outcome_id in r.text
                and "outcome" in r.text.split()]
    try:
        wait_until(outcome_row, 10, "the outcome row in the audit view")
        CHECKS.check(True, "the audit view lists sup's outcome")
    except Fatal:
        CHECKS.check(False, "the audit view lists sup's outcome", f"a row with outcome, {alert_id} and {outcome_id}",
                     [r.text for r in b.css("#audit-body tr")][:5])
    b.shot(os.path.join(env.out, "audit.png"))
    b.collect_logs()

    # The injected manifest is text, never code.
    xss_id = xss_alert["alert_id"]
    b.js("location.hash = arguments[0];", "#/alerts/" + urllib.parse.quote(xss_id, safe=""))
    wait_until(lambda: b.one("#alert-id").text == xss_id, 30, f"the detail of {xss_id}")
    desc = b.one("#manifest #goods-table .goods-desc", 30)
    time.sleep(1.0)  # room for an <img onerror> to fire if it were ever parsed
    CHECKS.check(desc.text == XSS, "the injected goods description is shown literally", repr(XSS), repr(desc.text))
    CHECKS.check(XSS in b.one("#manifest").text, "the injected notify party is shown literally", repr(XSS),
                 clip(b.one("#manifest").text, 400))
    xss = b.js("return typeof window.__xss === 'undefined' ? 'undefined' : String(window.__xss);")
    CHECKS.check(xss == "undefined", "the injected script and onerror never ran", "window.__xss undefined", xss)
    injected = b.js("return document.querySelectorAll('#view script, #view img[src=\"x\"]').length;")
    CHECKS.check(injected == 0, "no element was created from the injected markup", 0, injected)
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", desc)
    time.sleep(0.3)
    b.shot(os.path.join(env.out, "xss.png"))

    # Log out.
    cookie = d.get_cookie("bw_session") or {}
    CHECKS.check(cookie.get("httpOnly") and cookie.get("secure") and cookie.get("sameSite") == "Strict",
                 "the browser holds bw_session as HttpOnly, Secure, SameSite=Strict",
                 "httpOnly True, secure True, sameSite Strict", cookie and {k: cookie.get(k) for k in
                                                                            ("httpOnly", "secure", "sameSite")})
    b.one("#logout").click()
    b.one("#login-form", 15)
    CHECKS.check(b.one("#login", 5).is_displayed() and not b.one("#app-header", 5, visible=False).is_displayed(),
                 "logging out brings the login form back", "#login shown, #app-header hidden",
                 f"#login {b.one('#login', 5, visible=False).is_displayed()}, "
                 f"#app-header {b.one('#app-header', 5, visible=False).is_displayed()}")
    if cookie.get("value"):
        r = env.hub.get("/api/session", cookie=cookie["value"])
        CHECKS.check(r.status == 401, "the logged-out session is gone at the hub", 401, r)
    b.collect_logs()
    b.print_logs()
    problems = browser_problems(b.logs)
    CHECKS.check(not problems, "no CSP violation and no JS error in the browser console", "none", problems)

    # And the browser does enforce the policy: an inline script added now is refused and reported.
    b.js("const s = document.createElement('script'); s.textContent = 'window.__inline = 1;';"
         "document.head.appendChild(s);")
    time.sleep(0.5)
    inline = b.js("return typeof window.__inline === 'undefined' ? 'undefined' : String(window.__inline);")
    before = len(b.logs)
    b.collect_logs()
    refused = [e["message"] for e in b.logs[before:] if "Content Security Policy" in e.get("message", "")]
    CHECKS.check(inline == "undefined" and refused, "the browser enforces the CSP (an inline script is refused)",
                 "window.__inline undefined and a CSP report in the console", f"{inline}, {refused}")
    return alert_id


def security_checks(env, xss_alert):
    hub, token = env.hub, env.token
    some_id = xss_alert["alert_id"]
    # Headers on a page, an asset, an API answer and an error.
    for method, path in (("GET", "/"), ("GET", "/app/main.js"), ("GET", "/api/status"), ("GET", "/api/nothing")):
        r = hub.call(method, path)
        CHECKS.check(r.header("Content-Security-Policy") == CSP, f"{method} {path} carries the CSP", CSP,
                     r.header("Content-Security-Policy"))
        hsts = r.header("Strict-Transport-Security") or ""
        m = re.search(r"max-age=(\d+)", hsts)
        CHECKS.check(m and int(m.group(1)) >= 86400, f"{method} {path} carries Strict-Transport-Security",
                     "max-age of a day or more", hsts or None)

    # No session: 401 on every API route of docs/design/control-room-api.md (and /api/outcomes).
    q = urllib.parse.quote(some_id, safe="")
    routes = [("GET", "/api/session", None), ("DELETE", "/api/session", None), ("GET", "/api/alerts", None),
              ("GET", "/api/alerts?priority=CRITICAL&limit=5", None), ("GET", f"/api/alerts/{q}", None),
              ("POST", f"/api/alerts/{q}/workflow", {"action": "acknowledge"}),
              ("POST", f"/api/alerts/{q}/outcome", {"result": "NO_FINDING"}), ("GET", "/api/events", None),
              ("GET", "/api/audit", None), ("GET", "/api/status", None), ("GET", "/api/users", None),
              ("POST", "/api/outcomes", {"container_number": xss_alert["container_number"]})]
    for method, path, body in routes:
        for label, auth in (("no session", {}), ("a made-up session cookie", {"cookie": secrets.token_hex(32)}),
                            ("a made-up token", {"token": "bwt_" + secrets.token_hex(32)})):
            r = hub.call(method, path, body, **auth)
            CHECKS.check(r.status == 401, f"{method} {path} with {label} answers 401", 401, r)

    # Region isolation: an alert of ofc-b's region only.
    def caucasus_only():
        alerts, _ = list_all(hub, f"region={OFC_B_REGIONS[0]}", token=token)
        # Regions ofc-a may not read; exactly ofc-b's first when there is one.
        return sorted((a for a in alerts if not set(a["regions"]) & set(OFC_A_REGIONS)),
                      key=lambda a: set(a["regions"]) != set(OFC_B_REGIONS))
    foreign = wait_until(caucasus_only, 60, f"an alert of {OFC_B_REGIONS} and none of {OFC_A_REGIONS}")[0]
    fid = urllib.parse.quote(foreign["alert_id"], safe="")
    a = login(hub, "ofc-a", env.passwords["ofc-a"])
    b = login(hub, "ofc-b", env.passwords["ofc-b"])
    r = hub.get(f"/api/alerts/{fid}", cookie=b.cookie)
    CHECKS.check(r.status == 200, f"ofc-b ({OFC_B_REGIONS}) opens {foreign['alert_id']} ({foreign['regions']})",
                 200, r)
    r = hub.get(f"/api/alerts/{fid}", cookie=a.cookie)
    CHECKS.check(r.status == 404, f"ofc-a ({OFC_A_REGIONS}) opening {foreign['alert_id']} "
                 f"({foreign['regions']}) answers 404", 404, r)
    r = hub.get(f"/api/alerts/{q}", cookie=a.cookie)
    CHECKS.check(r.status == 200, f"ofc-a opens {some_id} of its own region", 200, r)
    listed, total = list_all(hub, "", cookie=a.cookie)
    ids = {x["alert_id"] for x in listed}
    outside = [x["alert_id"] for x in listed if not set(x["regions"]) & set(OFC_A_REGIONS)]
    CHECKS.check(foreign["alert_id"] not in ids and not outside and total == len(listed),
                 f"ofc-a's listing ({total} alerts) shows only its regions",
                 f"no {foreign['alert_id']}, nothing outside {OFC_A_REGIONS}",
                 f"listed foreign: {foreign['alert_id'] in ids}, outside: {outside[:5]}")
    r = hub.get(f"/api/alerts?q={foreign['container_number']}", cookie=a.cookie)
    found = [x["alert_id"] for x in r.json().get("alerts", []) if x["alert_id"] == foreign["alert_id"]]
    CHECKS.check(r.status == 200 and not found, f"ofc-a's search for {foreign['container_number']} does not show it",
                 "no match", f"{r.status} {found}")
    all_count = list_all(hub, "", token=token)[1]
    CHECKS.check(total < all_count, "ofc-a sees fewer alerts than the all-regions token", f"< {all_count}", total)

    # CSRF: a session without the token cannot change anything.
    r = hub.call("POST", f"/api/alerts/{q}/workflow", {"action": "acknowledge"}, cookie=a.cookie)
    CHECKS.check(r.status == 403, "POST workflow with a session cookie but no X-CSRF-Token answers 403", 403, r)
    r = hub.call("POST", f"/api/alerts/{q}/workflow", {"action": "acknowledge"}, cookie=a.cookie,
                 csrf=secrets.token_hex(32))
    CHECKS.check(r.status == 403, "POST workflow with a wrong X-CSRF-Token answers 403", 403, r)
    r = hub.call("POST", f"/api/alerts/{q}/outcome", {"result": "NO_FINDING"}, cookie=a.cookie)
    CHECKS.check(r.status == 403, "POST outcome without X-CSRF-Token answers 403", 403, r)
    r = hub.call("DELETE", "/api/session", cookie=a.cookie)
    CHECKS.check(r.status == 403, "DELETE /api/session without X-CSRF-Token answers 403", 403, r)
    r = hub.call("POST", f"/api/alerts/{q}/workflow", {"action": "acknowledge"}, cookie=a.cookie, csrf=a.csrf)
    CHECKS.check(r.status == 200 and r.json()["workflow"]["acknowledged_by"] == "ofc-a",
                 "the same POST with the session's X-CSRF-Token answers 200", "200, acknowledged_by ofc-a", r)

    # The session cookie's flags.
    attrs = [p.strip().lower() for p in a.set_cookie.split(";")[1:]]
    CHECKS.check("httponly" in attrs and "secure" in attrs and "samesite=strict" in attrs,
                 "the session cookie is HttpOnly, Secure, SameSite=Strict", "HttpOnly; Secure; SameSite=Strict",
                 a.set_cookie.split(";", 1)[1] if ";" in a.set_cookie else a.set_cookie)

    # Lockout: 5 failures for a name, the 6th attempt answers 429 with Retry-After.
    statuses = []
    for i in range(6):
        r = hub.call("POST", "/api/session", {"username": "ofc-b", "password": f"wrong-password-{i}"})
        statuses.append(r.status)
    CHECKS.check(statuses == [401] * 5 + [429], "6 wrong passwords for ofc-b: 5 × 401, then 429",
                 [401] * 5 + [429], statuses)
    retry = r.header("Retry-After")
    CHECKS.check(retry is not None and retry.isdigit() and int(retry) > 0, "the 429 carries Retry-After (seconds)",
                 "a positive integer", retry)
    r = hub.call("POST", "/api/session", {"username": "ofc-b", "password": env.passwords["ofc-b"]})
    CHECKS.check(r.status == 429, "while locked out even ofc-b's right password answers 429", 429, r)

    # Plaintext HTTP on the HTTPS port gets no HTTP answer.
    seen = b""
    try:
        with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
            s.sendall(f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{env.port}\r\nConnection: close\r\n\r\n".encode())
            s.settimeout(10)
            while len(seen) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                seen += chunk
    except OSError as e:
        seen += f" [{type(e).__name__}: {e}]".encode()
    CHECKS.check(not seen.startswith(b"HTTP/"), "plaintext HTTP to the HTTPS port gets no HTTP response",
                 "no 'HTTP/' status line (a TLS alert, a close or a reset)", clip(repr(seen[:120])))


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def sse_client(i, env, ctx, st, sem, stop):
    req = (f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{env.port}\r\nAuthorization: Bearer {env.token}\r\n"
           f"Accept: text/event-stream\r\n\r\n").encode()
    writer = None
    for attempt in range(3):
        st["attempts"] = attempt + 1
        try:
            async with sem:
                st["t_start"] = time.time()
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", env.port, ssl=ctx, server_hostname="127.0.0.1"), 60)
                st["t_tls"] = time.time()
                writer.write(req)
                await writer.drain()
                status = await asyncio.wait_for(reader.readline(), 60)
                headers = {}
                while True:
                    line = (await asyncio.wait_for(reader.readline(), 60)).decode().strip()
                    if not line:
                        break
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                st["t_headers"] = time.time()
            break
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
            st["error"] = f"{type(e).__name__}: {e}"
            if writer:
                writer.close()
                writer = None
            await asyncio.sleep(1 + attempt)
    else:
        return
    st["status"] = int(status.split()[1]) if status else 0
    if st["status"] != 200:
        st["error"] = f"status line {status!r}"
        writer.close()
        return
    st.pop("error", None)
    chunked = "chunked" in headers.get("transfer-encoding", "")
    text = ""
    try:
        while not stop.is_set():
            if chunked:
                size_line = await reader.readline()
                if not size_line:
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                data = await reader.readexactly(size + 2)
                data = data[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    break
            text += data.decode(errors="replace")
            while "\n\n" in text:
                block, text = text.split("\n\n", 1)
                for line in block.split("\n"):
                    if line.startswith(": boxwatch hub") and not st.get("joined"):
                        st["joined"] = time.time()
                    elif line == "event: alert":
                        st["alerts"] = st.get("alerts", 0) + 1
                        st.setdefault("first_alert", time.time())
                    elif line == "event: overflow":
                        st["overflow"] = True
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as e:
        if not stop.is_set():
            st["error"] = f"read: {type(e).__name__}: {e}"
    finally:
        st["closed"] = time.time()
        writer.close()


async def load_test_async(env):
    ctx = ssl.create_default_context(cafile=env.pki["ca"])
    pid = env.hub_proc.p.pid
    samples = []
    sampling = threading.Event()

    def sampler():
        while not sampling.is_set():
            try:
                samples.append((time.time(), rss_kib(pid)))
            except OSError:
                pass
            sampling.wait(0.25)

    rss_before = rss_kib(pid)
    threading.Thread(target=sampler, daemon=True).start()
    states = [{} for _ in range(LOAD_CLIENTS)]
    stop = asyncio.Event()
    sem = asyncio.Semaphore(64)  # handshakes in flight at once
    t_connect = time.time()
    tasks = [asyncio.create_task(sse_client(i, env, ctx, states[i], sem, stop)) for i in range(LOAD_CLIENTS)]
    deadline = time.time() + 120
    while time.time() < deadline:
        if all(s.get("joined") or (s.get("error") and s.get("attempts", 0) >= 3) for s in states):
            break
        await asyncio.sleep(0.25)
    joined = sum(1 for s in states if s.get("joined"))
    connect_s = time.time() - t_connect
    status = await asyncio.to_thread(lambda: env.hub.get("/api/status", token=env.token).json())
    rss_connected = rss_kib(pid)
    log(f"{joined}/{LOAD_CLIENTS} live-feed clients joined in {connect_s:.1f} s; hub live_clients "
        f"{status.get('live_clients')}, RSS {rss_connected / 1024:.0f} MiB")

    # More traffic while they listen: a later window of event time than the browser phase.
    start = (int(time.time() * 1000) - 3 * DAY_MS) // 1000 * 1000
    t_sim = time.time()
    sim = simulate(env, start, 150, 8, "simulate-2")
    deadline = time.time() + 150
    while time.time() < deadline:
        if all(s.get("alerts") for s in states if s.get("joined")) and joined:
            break
        await asyncio.sleep(0.25)
    t_all = time.time() - t_sim
    await asyncio.sleep(2)
    rss_during_max = max((r for t, r in samples if t >= t_connect), default=0)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sampling.set()
    sim_result = await asyncio.to_thread(finish_simulate, sim, "simulate (load phase)")
    await asyncio.sleep(1)
    rss_after = rss_kib(pid)
    hwm = rss_kib(pid, "VmHWM")
    got = [s.get("alerts", 0) for s in states]
    firsts = sorted(s["first_alert"] - t_sim for s in states if s.get("first_alert"))
    def pct(xs):
        xs = sorted(xs)
        return {"p50": round(xs[len(xs) // 2], 3), "p90": round(xs[int(len(xs) * 0.9)], 3),
                "max": round(xs[-1], 3)} if xs else None
    connect_tls = pct([s["t_tls"] - s["t_start"] for s in states if "t_tls" in s])
    connect_headers = pct([s["t_headers"] - s["t_tls"] for s in states if "t_headers" in s])
    errors = {}
    for s in states:
        if s.get("error"):
            errors[s["error"]] = errors.get(s["error"], 0) + 1
    figures = {
        "clients": LOAD_CLIENTS, "joined": joined, "connect_seconds": round(connect_s, 1),
        "per_client_seconds": {"tcp_and_tls": connect_tls, "request_to_headers": connect_headers},
        "hub_live_clients": status.get("live_clients"),
        "clients_with_alert": sum(1 for g in got if g >= 1),
        "alert_events_per_client": {"min": min(got), "median": sorted(got)[len(got) // 2], "max": max(got)},
        "alert_events_total": sum(got),
        "seconds_to_first_alert": {"first": round(firsts[0], 2) if firsts else None,
                                   "last": round(firsts[-1], 2) if firsts else None},
        "seconds_until_every_client_had_one": round(t_all, 1),
        "overflowed_clients": sum(1 for s in states if s.get("overflow")),
        "errors": errors,
        "simulated_records": sim_result.get("records"),
        "hub_rss_mib": {"before": round(rss_before / 1024, 1), "connected": round(rss_connected / 1024, 1),
                        "during_max": round(rss_during_max / 1024, 1), "after": round(rss_after / 1024, 1),
                        "peak_vmhwm": round(hwm / 1024, 1)},
        "rss_samples": len(samples), "rss_limit_mib": RSS_LIMIT >> 20,
    }
    return figures


def load_test(env):
    figures = asyncio.run(load_test_async(env))
    print(json.dumps({"event": "control_room_load", **figures}), flush=True)
    with open(os.path.join(env.out, "load.json"), "w") as f:
        json.dump(figures, f, indent=1)
    log(f"load figures in {os.path.join(env.out, 'load.json')}")
    CHECKS.check(figures["joined"] == LOAD_CLIENTS, f"{LOAD_CLIENTS} live-feed clients connected at once",
                 LOAD_CLIENTS, f"{figures['joined']} (errors {figures['errors']})")
    CHECKS.check(figures["hub_live_clients"] is not None and figures["hub_live_clients"] >= LOAD_CLIENTS,
                 "the hub counts them in /api/status live_clients", f">= {LOAD_CLIENTS}", figures["hub_live_clients"])
    CHECKS.check(figures["clients_with_alert"] == LOAD_CLIENTS, "every live-feed client received an event: alert",
                 LOAD_CLIENTS, f"{figures['clients_with_alert']} (per client {figures['alert_events_per_client']})")
    peak = max(figures["hub_rss_mib"]["during_max"], figures["hub_rss_mib"]["after"])
    CHECKS.check(peak * 1024 * 1024 < RSS_LIMIT, "the hub's RSS stays under 1 GiB with 500 live clients",
                 "< 1024 MiB", f"{peak} MiB (before {figures['hub_rss_mib']['before']} MiB)")


def print_logs(env):
    for p in env.procs:
        print(f"==== {p.name} stderr ({p.err_path}), last 150 lines ====")
        try:
            with open(p.err_path, errors="replace") as f:
                lines = f.readlines()
            print("".join(lines[-150:]), end="")
        except OSError as e:
            print(f"(cannot read: {e})")
        print(f"==== {p.name} stdout lines: {p.lines[-20:]}")
    for name in sorted(os.listdir(env.logs)):
        if name.startswith("simulate"):
            with open(os.path.join(env.logs, name), errors="replace") as f:
                print(f"==== {name} ====\n{f.read()[-3000:]}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("control_room_test: terminated (SIGTERM)"))
    bootstrap_file, bootstrap = read_bootstrap()
    env = Env()
    env.binary, env.out, env.bootstrap = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), bootstrap
    if not os.access(env.binary, os.X_OK):
        sys.exit(f"control_room_test: {env.binary} is not an executable")
    env.work = os.path.join(env.out, "work")
    env.logs = os.path.join(env.out, "logs")
    shutil.rmtree(env.work, ignore_errors=True)
    shutil.rmtree(env.logs, ignore_errors=True)
    os.makedirs(env.work)
    os.makedirs(env.logs)
    for name in ("queue.png", "detail.png", "map.png", "audit.png", "xss.png", "failure.png", "load.json"):
        if os.path.exists(os.path.join(env.out, name)):
            os.remove(os.path.join(env.out, name))  # nothing from an earlier run passes for this one's
    env.prefix = f"cr{int(time.time())}x{os.getpid()}."
    env.procs, env.sims = [], []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    browser = None
    crashed = None
    log(f"broker {bootstrap} (from {bootstrap_file}); output in {env.out}")
    try:
        env.pki = make_pki(env.work)
        env.accounts, env.passwords, env.token = make_accounts(env.binary, env.work)
        env.kafka = KafkaTool(kafka_libs(bootstrap_file), env.work)
        log("test CA, server certificate for 127.0.0.1 and accounts made")
        start_pipeline(env)
        xss_alert = produce_xss_manifest(env)
        browser = Browser(env.pki["spki"], env.work)
        try:
            browser_test(env, browser, xss_alert)
        except BaseException:
            try:  # what the page showed when it went wrong
                browser.driver.save_screenshot(os.path.join(env.out, "failure.png"))
                log(f"screenshot at the failure: {os.path.join(env.out, 'failure.png')}")
            except Exception:
                pass
            raise
        finally:
            if not browser.printed:
                browser.collect_logs()
                browser.print_logs()
                for p in browser_problems(browser.logs):
                    print(f"  browser problem: {p}")
            browser.quit()
            browser = None
        security_checks(env, xss_alert)
        load_test(env)
        for p in env.procs:
            CHECKS.check(p.p.poll() is None, f"{p.name} still running at the end", "running",
                         f"exited {p.p.returncode}")
    except Fatal as e:
        crashed = str(e)
    except Exception as e:  # a bug or an unexpected answer: still clean up and show the logs
        import traceback
        traceback.print_exc()
        crashed = f"{type(e).__name__}: {e}"
    finally:
        if browser is not None:
            browser.quit()
        for s in env.sims:
            if s.poll() is None:
                s.kill()
                s.wait()
        if crashed or CHECKS.failures:
            print_logs(env)
        for p in reversed(env.procs):
            p.stop()
    shots = [os.path.join(env.out, n) for n in ("queue.png", "detail.png", "map.png", "audit.png", "xss.png")]
    print("screenshots: " + ", ".join(s for s in shots if os.path.exists(s)))
    if crashed:
        CHECKS.failures.append(f"stopped early: {crashed}")
        print(f"FAIL stopped early: {crashed}")
    print(f"{CHECKS.passed} checks passed, {len(CHECKS.failures)} failed ({time.time() - T0:.0f} s)")
    for f in CHECKS.failures:
        print(f"  - {f}")
    return 1 if CHECKS.failures else 0


if __name__ == "__main__":
    sys.exit(main())
