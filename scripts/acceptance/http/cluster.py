"""The deployment under test: a real PostgreSQL (given, or started with scripts/pg-test-server.sh), a
fresh database on it per run, a tokens file made by `payment-mcp token add`, and two
`payment-mcp serve --http 127.0.0.1:0` processes on that one ledger, configured for Alipay against
the fake gateway of ../alipay (imported, not copied).

Nothing here knows payment-mcp's code: the binary is driven through its CLI and documented
environment variables (README "Team deployments", docs/http.md, docs/ledger.md).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "alipay"))

import wire  # noqa: E402  (../alipay: RSA keys, Alipay signing and notifications)
from gateway import FakeAlipay  # noqa: E402  (../alipay: the independent fake gateway.do)

LISTENING = re.compile(r"listening on (http://\S+/mcp)")


class Unavailable(Exception):
    """PostgreSQL cannot be had: the suite skips, loudly."""


# ---------------------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """A PostgreSQL server and the fresh database this run uses on it."""

    admin_url: str
    url: str = ""
    database: str = ""
    started_dir: str = ""  # set when this run started the server itself (stopped at the end)

    @staticmethod
    def psql() -> str:
        found = shutil.which("psql")
        if found:
            return found
        for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
            p = os.path.join("/usr/lib/postgresql", d, "bin", "psql")
            if os.access(p, os.X_OK):
                return p
        raise Unavailable("psql (postgresql-client) is not installed: it creates the run's database")

    @classmethod
    def obtain(cls) -> Postgres:
        """PAYMENT_TEST_POSTGRES if set (as .ci/run sets it), else a throwaway server started with
        scripts/pg-test-server.sh (PostgreSQL from the Debian packages must be installed)."""
        given = os.environ.get("PAYMENT_TEST_POSTGRES")
        if given:
            pg = cls(given)
        else:
            script = os.path.join(REPO, "scripts", "pg-test-server.sh")
            run = subprocess.run(["bash", script, "start"], capture_output=True, text=True, timeout=120)
            if run.returncode != 0:
                raise Unavailable(f"PAYMENT_TEST_POSTGRES is not set and {script} could not start one: "
                                  + (run.stderr.strip() or f"exit {run.returncode}"))
            exported = dict(re.findall(r"export (\w+)=(\S+)", run.stdout))
            pg = cls(exported["PAYMENT_TEST_POSTGRES"], started_dir=exported["PAYMENT_TEST_POSTGRES_DIR"])
        try:
            pg.create_database()
        except Exception:
            pg.stop()
            raise
        return pg

    def create_database(self) -> None:
        name = f"payment_mcp_http_acc_{os.getpid()}_{secrets.token_hex(4)}"
        self._sql(f"CREATE DATABASE {name}")
        self.database = name
        parts = urllib.parse.urlsplit(self.admin_url)
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + self.database, parts.query, ""))

    def _sql(self, statement: str) -> None:
        run = subprocess.run([self.psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.admin_url, "-c", statement],
                             capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise Unavailable(f"PostgreSQL at {redact_url(self.admin_url)} refused `{statement}`: {run.stderr.strip()}")

    def stop(self) -> None:
        if self.database and not self.started_dir:
            try:
                self._sql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
            except Unavailable as e:
                print(f"note: {e}", file=sys.stderr)
        if self.started_dir:
            subprocess.run(["bash", os.path.join(REPO, "scripts", "pg-test-server.sh"), "stop", self.started_dir],
                           capture_output=True, timeout=120)


def redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return url


# ---------------------------------------------------------------------------------------- instances


@dataclass
class Instance:
    """One `serve --http` process."""

    label: str
    proc: subprocess.Popen
    stderr_path: str
    url: str = ""  # http://127.0.0.1:PORT/mcp

    @property
    def base(self) -> str:
        return self.url[: -len("/mcp")]

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()


@dataclass
class Deployment:
    binary: str
    workdir: str
    pg: Postgres
    app: wire.KeyPair = field(default_factory=wire.KeyPair.generate)  # the merchant's key (AP_APP_KEY)
    alipay: wire.KeyPair = field(default_factory=wire.KeyPair.generate)  # "Alipay's" key (AP_PUB_KEY)
    app_id: str = "2021000122671080"
    gateway: FakeAlipay | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # name -> the token `token add` printed
    instances: list[Instance] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        assert self.gateway is not None
        home = os.path.join(self.workdir, "home")
        os.makedirs(home, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "TZ": "America/Los_Angeles",
            "AP_APP_ID": self.app_id,
            "AP_APP_KEY": self.app.pkcs8_body(),
            "AP_PUB_KEY": self.alipay.spki_body(),
            "PAYMENT_API_BASE_URL": self.gateway.url,
            "PAYMENT_LEDGER": self.pg.url,
            "PAYMENT_TOKENS_FILE": os.path.join(self.workdir, "tokens"),
            # Only a notification can end a wait early: the next poll is an hour away.
            "PAYMENT_POLL_INTERVAL_MS": "3600000",
            # The races open many sessions a second with one token; the default 50/s per token per
            # instance is a deployment choice, not what is under test here.
            "PAYMENT_HTTP_RATE_LIMIT": "1000",
            # info: the access log plus the notification module's "order is now paid" line, which the
            # replay check counts.
            "PAYMENT_LOG": "info",
        }

    def start_gateway(self) -> None:
        self.gateway = FakeAlipay(self.app_id, self.app.public, self.alipay, "RSA2")
        self.gateway.start()

    def add_token(self, name: str, scope: str) -> str:
        run = subprocess.run([self.binary, "token", "add", name, "--scope", scope], env=self.env(),
                             capture_output=True, text=True, timeout=30)
        token = run.stdout.strip()
        if run.returncode != 0 or not token.startswith("pmcp_"):
            raise RuntimeError(f"token add {name} failed ({run.returncode}): {run.stdout!r} {run.stderr!r}")
        self.tokens[name] = token
        return token

    def start_instance(self, label: str) -> Instance:
        err = os.path.join(self.workdir, f"{label}.stderr")
        with open(err, "w") as f:
            proc = subprocess.Popen([self.binary, "serve", "--http", "127.0.0.1:0"], env=self.env(),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f)
        inst = Instance(label, proc, err)
        self.instances.append(inst)
        return inst

    def wait_listening(self, inst: Instance, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = LISTENING.search(inst.stderr())
            if m:
                inst.url = m.group(1)
                return
            if inst.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{inst.label} did not start (exit {inst.proc.poll()}):\n{inst.stderr()[-3000:]}")

    def stop(self) -> None:
        for inst in self.instances:
            if inst.proc.poll() is None:
                inst.proc.terminate()
        for inst in self.instances:
            try:
                inst.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                inst.proc.kill()
                inst.proc.wait()
        if self.gateway is not None:
            self.gateway.stop()
