#!/usr/bin/python3
"""A small stand-in for the Hugging Face Hub, for `qembed pull`'s tests: it
answers the paths the downloader uses, with the headers the Hub sends, over
loopback only.

  GET  /api/models/{org}/{name}/revision/{rev}[?blobs=true]
       {"id", "sha", "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size", "pointerSize"}}]}
  HEAD/GET /{org}/{name}/resolve/{rev}/{path}
       a regular file: 200, ETag "<git blob sha1>", X-Repo-Commit
       an LFS file:    302 to /cdn/{sha256} (an absolute URL, as the Hub's CDN
                       redirect is), X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
  GET  /cdn/{sha256}   the bytes; honours "Range: bytes=N-" with 206

Errors as the Hub words them: 401 (no or wrong token when --token is set), 403
GatedRepo (--gated: a valid token without access),
404 with X-Error-Code RepositoryNotFound / RevisionNotFound / EntryNotFound.

  mirror.py --root DIR --port-file F --log F [--token T] [--drop-once PATH:BYTES]
            [--corrupt PATH] [--fail-first N] [--cdn-host NAME] [--gated]

DIR holds one folder per repo: DIR/{org}/{name}/... (files or symlinks). A
file is LFS when it is a .safetensors file or at least 1 MiB (as the Hub's
default .gitattributes would make it). Every request is logged as one JSON line
(method, path, range, status, bytes of body sent, auth) for the tests to check.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

A = None
REPOS = {}
LOCK = threading.Lock()
STATE = {"dropped": False, "failed": 0}


def is_lfs(path, size):
    return path.endswith(".safetensors") or size >= (1 << 20)


def scan(root):
    for org in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, org))):
            base = os.path.join(root, org, name)
            files = {}
            for dp, dn, fn in os.walk(base, followlinks=True):
                dn.sort()
                for f in sorted(fn):
                    full = os.path.join(dp, f)
                    rel = os.path.relpath(full, base)
                    data = open(full, "rb").read()
                    files[rel] = {
                        "full": full,
                        "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "git": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                        "lfs": is_lfs(rel, len(data)),
                    }
            h = hashlib.sha1()
            for rel in sorted(files):
                h.update(("%s %s\n" % (rel, files[rel]["git"])).encode())
            REPOS["%s/%s" % (org, name)] = {"sha": h.hexdigest(), "files": files}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped one is clean to tell

    def log_message(self, *a):
        pass

    def log(self, status, sent):
        rec = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
               "status": status, "sent": sent, "auth": self.headers.get("Authorization") is not None}
        with LOCK:
            with open(A.log, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def reply(self, status, headers=(), body=b"", send_body=True):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        # logged before the body goes out: the client cannot see the end of a
        # reply (and the test read the log) before its record is written
        self.log(status, len(body) if send_body and body else 0)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def error(self, status, code, msg, send_body=True):
        self.reply(status, [("X-Error-Code", code), ("X-Error-Message", msg),
                            ("Content-Type", "application/json")],
                   json.dumps({"error": msg}).encode(), send_body)

    def authorized(self, send_body):
        if not A.token:
            return True
        if self.headers.get("Authorization") == "Bearer " + A.token:
            if A.gated:  # a valid token whose account has not accepted the repo's conditions
                self.error(403, "GatedRepo", "Access to this model is restricted. You must have access to it "
                           "and be authenticated to access it.", send_body)
                return False
            return True
        # the Hub answers 401 for a private repo without (or with a bad) token
        self.error(401, "", "Invalid credentials in Authorization header", send_body)
        return False

    def do_HEAD(self):
        self.handle_any(False)

    def do_GET(self):
        self.handle_any(True)

    def handle_any(self, body):
        with LOCK:
            if STATE["failed"] < A.fail_first:
                STATE["failed"] += 1
                fail = True
            else:
                fail = False
        if fail:
            return self.error(503, "", "Service temporarily unavailable", body)
        u = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in u.path.split("/")[1:]]
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            return self.api(parts[2:], body)
        if parts[:1] == ["cdn"] and len(parts) == 2:
            return self.cdn(parts[1], body)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(parts, body)
        self.error(404, "", "no such path", body)

    def find(self, repo, rev, body):
        if not self.authorized(body):
            return None
        r = REPOS.get(repo)
        if r is None:
            self.error(404, "RepositoryNotFound", "Repository not found", body)
            return None
        if rev not in ("main", "v1.0", "refs/pr/1", r["sha"]):  # every name points at the one commit
            self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, body)
            return None
        return r

    def api(self, parts, body):
        # /api/models/{org}/{name}/revision/{rev}  (rev arrives percent-encoded)
        if len(parts) != 4 or parts[2] != "revision":
            return self.error(404, "", "no such path", body)
        repo = parts[0] + "/" + parts[1]
        r = self.find(repo, parts[3], body)
        if r is None:
            return
        blobs = "blobs=true" in urllib.parse.urlsplit(self.path).query
        sib = []
        for rel, f in r["files"].items():
            s = {"rfilename": rel}
            if blobs:
                s.update({"size": f["size"], "blobId": f["git"]})
                if f["lfs"]:
                    s["lfs"] = {"sha256": f["sha256"], "size": f["size"], "pointerSize": 134}
            sib.append(s)
        doc = {"_id": "0" * 24, "id": repo, "modelId": repo, "sha": r["sha"], "private": bool(A.token),
               "tags": [], "siblings": sib}
        self.reply(200, [("Content-Type", "application/json")], json.dumps(doc).encode(), body)

    def resolve(self, parts, body):
        repo = parts[0] + "/" + parts[1]
        rev = parts[3]
        path = "/".join(parts[4:])
        r = self.find(repo, rev, body)
        if r is None:
            return
        f = r["files"].get(path)
        if f is None:
            return self.error(404, "EntryNotFound", "Entry not found", body)
        common = [("X-Repo-Commit", r["sha"])]
        if f["lfs"]:
            host, port = self.server.server_address[:2]
            loc = "http://%s:%d/cdn/%s" % (A.cdn_host or host, port, f["sha256"])
            return self.reply(302, common + [("Location", loc), ("X-Linked-Etag", '"%s"' % f["sha256"]),
                                             ("X-Linked-Size", str(f["size"])), ("ETag", '"%s"' % f["git"])],
                              b"", body)
        self.serve_file(f, path, [("ETag", '"%s"' % f["git"])] + common, body)

    def cdn(self, sha, body):
        for r in REPOS.values():
            for path, f in r["files"].items():
                if f["sha256"] == sha:
                    return self.serve_file(f, path, [("ETag", '"%s"' % sha)], body)
        self.error(404, "", "no such object", body)

    def serve_file(self, f, path, headers, body):
        data = open(f["full"], "rb").read()
        if A.corrupt == path:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x5A
            data = bytes(data)
        start = 0
        rng = self.headers.get("Range")
        status = 200
        if rng:
            if not rng.startswith("bytes=") or not rng[6:].endswith("-"):
                return self.error(416, "", "unsupported range", body)
            start = int(rng[6:-1])
            if start >= len(data):
                return self.reply(416, [("Content-Range", "bytes */%d" % len(data))], b"", body)
            status = 206
            headers = headers + [("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))]
        part = data[start:]
        drop_at = None
        if A.drop_once and body:
            dpath, _, nbytes = A.drop_once.rpartition(":")
            with LOCK:
                if dpath == path and not STATE["dropped"]:
                    STATE["dropped"] = True
                    drop_at = int(nbytes) - start
        self.send_response(status)
        for k, v in headers + [("Content-Length", str(len(part))), ("Accept-Ranges", "bytes")]:
            self.send_header(k, v)
        dropping = body and drop_at is not None and 0 < drop_at < len(part)
        # logged before the body goes out (see reply)
        self.log(status, 0 if not body else drop_at if dropping else len(part))
        self.end_headers()
        if not body:
            return
        if dropping:
            # send a prefix, then cut the connection as a broken network would
            self.wfile.write(part[:drop_at])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(part)


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--token")
    ap.add_argument("--drop-once", help="PATH:BYTES: cut the first GET of PATH after BYTES")
    ap.add_argument("--corrupt", help="PATH: serve PATH with one byte changed")
    ap.add_argument("--cdn-host", help="host name in the CDN redirects (another name for loopback: another origin)")
    ap.add_argument("--gated", action="store_true", help="with --token: the token is valid but gets 403")
    ap.add_argument("--fail-first", type=int, default=0, help="answer the first N requests with 503")
    A = ap.parse_args()
    scan(A.root)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    tmp = A.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, A.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
