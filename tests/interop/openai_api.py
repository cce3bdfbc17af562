#!/usr/bin/python3
"""The local API through the official OpenAI client (npm `openai`, pinned in tools/).

Starts an apiary node with stories15M from the offline mirror (shared/models), creates a
token, and has the client list models and run a completion streaming and not. Checks the
text against llama.cpp's greedy continuation of the same prompt (shared/models/
stories15M-Q8_0.ref.json), that streaming and non-streaming agree, that usage counts are
right, and that a bad token is refused; then tool calls and structured output through the
OpenAI client, LangChain and the Vercel AI SDK (tools_client.js), checked with ajv,
embeddings through the same three (embed_client.js) against llama.cpp's vectors
(tests/data/embeddings), and logprobs, echo and n = 2 streamed through the same three
(logprobs_client.js), the first position's logprobs against llama.cpp's logits. Then the
same client talks to a second node that
has no model: its API buys the tokens from the first node over the network (free offer,
no chain), and every check must hold again. Prints "N passed, N failed".
"""
import json, os, socket, subprocess, sys, tempfile, time
from ports import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("APIARY_BIN", os.path.join(ROOT, "build/apiary"))
SHARED = os.environ.get("APIARY_SHARED", os.path.join(ROOT, "..", "shared"))
passed = failed = 0

def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("  ok    %s" % name)
    else:
        failed += 1
        print("  FAIL  %s %s" % (name, detail))

def done():
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)

mirror = os.path.join(SHARED, "models")
client = os.path.join(ROOT, "tools/node_modules/openai")
if not os.path.isdir(mirror) or not os.path.isdir(client):
    print("no model mirror or no openai client (run scripts/setup); skipping")
    done()

def apiary(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr

# llama.cpp's greedy continuation of a story prompt (an independent reference).
ref = json.load(open(os.path.join(mirror, "stories15M-Q8_0.ref.json")))["greedy"][0]
prompt, want, want_prompt_tokens = ref["prompt"], ref["generated_text"], len(ref["prompt_ids"])
work = tempfile.mkdtemp(prefix="apiary-test-openai-")
nodes = []

def http_up(port):
    """True when the node's API answers GET /health (the node is up and its HTTP port is its own)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            head = c.recv(64)
            return head.startswith(b"HTTP/1.") and b" 200 " in head[:16]
    except OSError:
        return False

def start_node(home, dht_port, boot_port, http_port):
    """Starts a node and waits until its API answers; returns its (DHT port, HTTP port). A port
    chosen free may be taken by another process before the node binds it: the node then exits
    and is started again on new ports (at most 5 times)."""
    for attempt in range(5):
        log = open(home + ".log", "w")
        p = subprocess.Popen([BIN, "node", "--home", home, "--no-lan", "--listen", "127.0.0.1:0", "--dht-port",
                              str(dht_port), "--bootstrap", "127.0.0.1:%d" % boot_port, "--http",
                              "127.0.0.1:%d" % http_port], stdout=subprocess.DEVNULL, stderr=log)
        nodes.append(p)
        for _ in range(300):
            if p.poll() is not None or http_up(http_port):
                break
            time.sleep(0.1)
        if p.poll() is None:
            return dht_port, http_port
        dht_port, http_port = free_ports(2)
    return dht_port, http_port

def log_tail(home):
    try:
        return open(home + ".log").read()[-3000:]
    except OSError:
        return ""

def run_client(label, port, token, home):
    r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai_client.js"),
                        "http://127.0.0.1:%d/v1" % port, token, "stories15M", prompt],
                       capture_output=True, text=True, timeout=300)
    check(label + "the openai client ran", r.returncode == 0,
          r.stderr[-2000:] + ("" if r.returncode == 0 else "\n  node log:\n" + log_tail(home)))
    res = json.loads(r.stdout) if r.returncode == 0 else {}
    check(label + "models.list names stories15M", "stories15M" in res.get("models", []), repr(res.get("models")))
    c = res.get("completion", {})
    s = res.get("stream", {})
    u = c.get("usage") or {}
    check(label + "completion usage: llama.cpp's prompt token count, 24 completion tokens, their sum",
          u.get("prompt_tokens") == want_prompt_tokens and u.get("completion_tokens") == 24 and
          u.get("total_tokens") == want_prompt_tokens + 24, repr(u))
    check(label + "completion finish_reason is length", c.get("finish") == "length", repr(c.get("finish")))
    # Q8_0 greedy may fork late on small margins; the first words must be llama.cpp's.
    head = want[:40]
    check(label + "completion text follows llama.cpp's greedy reference", c.get("text", "").startswith(head),
          repr(c.get("text", "")[:80]) + " vs " + repr(head))
    check(label + "streamed text equals the non-streamed text", s.get("text") == c.get("text"),
          repr(s.get("text", "")[:80]))
    check(label + "the stream came in several chunks", s.get("chunks", 0) >= 4, repr(s.get("chunks")))
    check(label + "stream usage matches", (s.get("usage") or {}).get("completion_tokens") == 24, repr(s.get("usage")))
    check(label + "a bad token gets 401", res.get("bad_token") == 401, repr(res.get("bad_token")))
    ch, chs = res.get("chat", {}), res.get("chat_stream", {})
    check(label + "chat completion: an assistant message", ch.get("object") == "chat.completion" and
          ch.get("role") == "assistant" and len(ch.get("text") or "") > 0, repr(ch)[:300])
    cu = ch.get("usage") or {}
    check(label + "chat usage adds up", cu.get("completion_tokens", 0) >= 1 and cu.get("completion_tokens", 99) <= 16 and
          cu.get("total_tokens") == cu.get("prompt_tokens", 0) + cu.get("completion_tokens", 0), repr(cu))
    check(label + "streamed chat equals the non-streamed chat", chs.get("text") == ch.get("text") and
          chs.get("role") == "assistant", repr(chs)[:300])

def run_tools(label, port, token, home):
    """Tool calls and structured output through the OpenAI client, LangChain and the Vercel AI
    SDK (tests/interop/tools_client.js); each of its checks becomes one line here."""
    r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools_client.js"),
                        "http://127.0.0.1:%d/v1" % port, token, "stories15M"], capture_output=True, text=True, timeout=600)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        check(label + "the tools client ran", False, r.stderr[-2000:] + "\n  node log:\n" + log_tail(home))
        return
    for name, ok, detail in res["checks"]:
        check(label + name, ok, detail)

def run_embed(label, port, token, home):
    """POST /v1/embeddings through the OpenAI client, LangChain and the Vercel AI SDK
    (tests/interop/embed_client.js), against llama.cpp's vectors for the same file."""
    ref = os.path.join(ROOT, "tests/data/embeddings/stories15M-Q8_0.json")
    r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "embed_client.js"),
                        "http://127.0.0.1:%d/v1" % port, token, "stories15M", ref], capture_output=True, text=True, timeout=300)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        check(label + "the embeddings client ran", False, r.stderr[-2000:] + "\n  node log:\n" + log_tail(home))
        return
    for name, ok, detail in res["checks"]:
        check(label + name, ok, detail)

local_first = {}

def run_logprobs(label, port, token, home, routed):
    """logprobs, echo and n = 2 streamed through the OpenAI client, LangChain and the Vercel AI
    SDK (tests/interop/logprobs_client.js), bought ones equal to local ones (the provider's
    chunks carry them); the completion's first generated position against
    llama.cpp's logits for the same prompt (logit - logsumexp; the model is Q8_0, whose
    logits test_engine holds to llama.cpp's within 0.3, so within 0.1 here)."""
    r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "logprobs_client.js"),
                        "http://127.0.0.1:%d/v1" % port, token, "stories15M", prompt, "1" if routed else "0"],
                       capture_output=True, text=True, timeout=600)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        check(label + "the logprobs client ran", False, r.stderr[-2000:] + "\n  node log:\n" + log_tail(home))
        return
    for name, ok, detail in res["checks"]:
        check(label + name, ok, detail)
    if routed:
        check(label + "the provider's logprobs equal this node's own (same model, greedy)",
              res.get("first") is not None and res.get("first") == local_first.get("first"),
              "%r vs %r" % (res.get("first"), local_first.get("first")))
        return
    local_first["first"] = res.get("first")
    first, last = res.get("first") or {}, ref["last_prompt_token_logits"]
    lse, top = last["logsumexp"], last["top"]
    want = top[0][1] - lse
    check(label + "completion logprob of the first token: llama.cpp's logit - logsumexp",
          abs((first.get("logprob") or 0) - want) < 0.1, "%r vs %.4f" % (first.get("logprob"), want))
    got = [v for _, v in first.get("top", [])]
    check(label + "its 5 alternatives: llama.cpp's 5 largest, in order, within 0.1",
          len(got) == 5 and [t for t, _ in first.get("top", [])][0] == first.get("token") and
          all(abs(got[i] - (top[i][1] - lse)) < 0.1 for i in range(5)),
          "%r vs %r" % (got, [round(t[1] - lse, 4) for t in top[:5]]))

def post_chat(port, token, body):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())

def same_as_local(port, token, port_c, token_c, home, home_c):
    """A constrained answer bought from the network equals the local one for the same seed
    (the provider applies the grammar): a JSON schema and a required tool call, sampled."""
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
              "age": {"type": "integer", "minimum": 1, "maximum": 99}, "height": {"type": "number",
              "minimum": 0.5, "maximum": 2.5}}, "required": ["name", "age", "height"], "additionalProperties": False}
    base = {"model": "stories15M", "max_tokens": 64, "temperature": 0.9, "seed": 11,
            "messages": [{"role": "user", "content": "Tell me about a boy."}]}
    for label, extra in (("json_schema", {"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}}),
                         ("required tool", {"tool_choice": "required", "tools": [{"type": "function", "function": {
                             "name": "describe", "parameters": schema}}]})):
        body = dict(base, **extra)
        try:
            a, b = post_chat(port, token, body), post_chat(port_c, token_c, body)
        except Exception as e:
            check("routed %s: same answer as local for the same seed" % label, False, repr(e) +
                  "\n  provider's log:\n" + log_tail(home) + "\n  buyer's log:\n" + log_tail(home_c))
            continue
        ma, mb = a["choices"][0]["message"], b["choices"][0]["message"]
        ta = ma.get("content") or json.dumps([c["function"] for c in ma.get("tool_calls") or []])
        tb = mb.get("content") or json.dumps([c["function"] for c in mb.get("tool_calls") or []])
        check("routed %s: same answer as local for the same seed" % label, ta == tb and b.get("apiary", {}).get("served") == "network",
              repr(ta[:200]) + " vs " + repr(tb[:200]))
        if label == "json_schema":
            try:
                o = json.loads(ta)
                ok = set(o) == {"name", "age", "height"} and 1 <= o["age"] <= 99 and 0.5 <= o["height"] <= 2.5 and len(o["name"]) <= 12
            except (ValueError, TypeError, KeyError):
                ok = False
            check("json_schema with decimal bounds: the object holds them", ok, repr(ta[:200]))

try:
    home, home_c = os.path.join(work, "n"), os.path.join(work, "c")
    apiary("init", "--home", home)
    apiary("init", "--home", home_c)
    rc, out, err = apiary("model", "pull", "--home", home, "stories15M", "--from", mirror, "--quiet")
    check("stories15M pulled from the mirror", rc == 0, err)
    rc, out, err = apiary("sell", "--home", home, "stories15M")  # a new node sells nothing
    check("apiary sell stories15M", rc == 0, err)
    token = apiary("token", "--home", home, "create")[1].strip()
    token_c = apiary("token", "--home", home_c, "create")[1].strip()
    dht_a, dht_c, port = free_ports(3)
    dht_a, port = start_node(home, dht_a, dht_c, port)
    run_client("", port, token, home)
    run_tools("", port, token, home)
    run_embed("", port, token, home)
    run_logprobs("", port, token, home, False)
    # A node without the model: its API routes to the first node. Its ports are chosen now, not
    # before the first client ran, so nothing else had time to take them.
    dht_c, port_c = free_ports(2)
    dht_c, port_c = start_node(home_c, dht_c, dht_a, port_c)
    for _ in range(100):
        rc, out, err = apiary("offers", "--home", home_c, "--json")
        if rc == 0 and json.loads(out).get("offers"):
            break
        time.sleep(0.2)
    run_client("routed: ", port_c, token_c, home_c)
    run_tools("routed: ", port_c, token_c, home_c)
    run_logprobs("routed: ", port_c, token_c, home_c, True)
    same_as_local(port, token, port_c, token_c, home, home_c)
finally:
    for n in nodes:
        n.terminate()
        try:
            n.wait(15)
        except Exception:
            n.kill()
    subprocess.run(["rm", "-rf", work])
done()
