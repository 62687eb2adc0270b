"""The scenario sandbox's application: the API the runbooks restart, roll back and check.

It is committed into the sandbox's git repository at every version, and runs from that
checkout, so a rollback changes what really serves. Configuration comes from `.env` in the
working directory (read once at start: a changed key needs a restart, as in production):
APP_PORT, PGHOST, PGPORT, PGDATABASE, LLM_PRIMARY_URL, LLM_FALLBACK_URL, LLM_FALLBACK_PROVIDER,
LLM_API_KEY. A `BROKEN` file in the checkout marks a bad release: /health answers 500.

GET  /health                        200 {"status": "ok", "version", "commit"} (500 when broken)
GET  /health/deep                   postgres reachability and each LLM provider's status
POST /api/v1/ai-agents/test-prompt  a prompt through the primary provider, else the fallback
"""
import json
import os
import subprocess
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load_env(path=".env"):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key.strip()] = value.strip()
    return env


ENV = load_env()
VERSION = open("VERSION").read().strip()
COMMIT = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
BROKEN = open("BROKEN").read().strip() if os.path.exists("BROKEN") else None


def postgres():
    try:
        r = subprocess.run(
            ["psql", "-h", ENV["PGHOST"], "-p", ENV["PGPORT"], "-d", ENV["PGDATABASE"],
             "-tAc", "select 1"],
            capture_output=True, text=True, timeout=5)
        return "ok" if r.returncode == 0 else "failed"
    except (subprocess.TimeoutExpired, OSError):
        return "failed"


def ask(url):
    """ok, unauthorized or down: one prompt to one provider."""
    req = urllib.request.Request(
        url.rstrip("/") + "/v1/chat", data=b'{"prompt": "ping"}', method="POST",
        headers={"Authorization": "Bearer " + ENV.get("LLM_API_KEY", ""),
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return "ok" if resp.status == 200 else "error"
    except urllib.error.HTTPError as e:
        return "unauthorized" if e.code == 401 else "error"
    except (urllib.error.URLError, OSError):
        return "down"


def providers():
    found = {"primary": ask(ENV["LLM_PRIMARY_URL"])}
    if ENV.get("LLM_FALLBACK_PROVIDER"):
        found["fallback"] = ask(ENV["LLM_FALLBACK_URL"])
    return found


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            if BROKEN:
                self.reply(500, {"status": "error", "error": BROKEN, "version": VERSION,
                                 "commit": COMMIT})
            else:
                self.reply(200, {"status": "ok", "version": VERSION, "commit": COMMIT})
        elif self.path == "/health/deep":
            pg = postgres()
            llm = providers()
            ok = pg == "ok" and not BROKEN
            status = "ok" if ok and all(v == "ok" for v in llm.values()) else "degraded"
            self.reply(200 if ok else 503, {"status": status, "postgres": pg,
                                            "llm_providers": llm, "version": VERSION})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/api/v1/ai-agents/test-prompt":
            self.reply(404, {"error": "not found"})
            return
        tried = {}
        for name in ("primary", "fallback"):
            if name == "fallback" and not ENV.get("LLM_FALLBACK_PROVIDER"):
                break
            url = ENV["LLM_PRIMARY_URL"] if name == "primary" else ENV["LLM_FALLBACK_URL"]
            result = ask(url)
            tried[name] = result
            if result == "ok":
                self.reply(200, {"ok": True, "provider": name, "tried": tried})
                return
        self.reply(502, {"ok": False, "tried": tried})

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


if __name__ == "__main__":
    port = int(ENV.get("APP_PORT", "8001"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("app %s (%s) listening on 127.0.0.1:%d" % (VERSION, COMMIT[:12], port), flush=True)
    server.serve_forever()
