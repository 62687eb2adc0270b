"""A stand-in LLM provider for the scenario sandbox: answers POST /v1/chat with 200 when the
bearer key is the one it was started with, 401 otherwise. Usage: llm_provider.py PORT KEY NAME."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, KEY, NAME = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"status": "operational", "provider": NAME})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.headers.get("Authorization") != "Bearer " + KEY:
            self.reply(401, {"error": "invalid api key"})
        else:
            self.reply(200, {"provider": NAME, "answer": "pong"})

    def log_message(self, fmt, *args):
        print("%s: %s" % (NAME, fmt % args), flush=True)


if __name__ == "__main__":
    print("%s listening on 127.0.0.1:%d" % (NAME, PORT), flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
