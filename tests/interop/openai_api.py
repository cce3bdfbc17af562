#!/usr/bin/python3
"""The local API through the official OpenAI client (npm `openai`, pinned in tools/).

Starts an apiary node with stories15M from the offline mirror (shared/models), creates a
token, and has the client list models and run a completion streaming and not. Checks the
text against llama.cpp's greedy continuation of the same prompt (shared/models/
stories15M-Q8_0.ref.json), that streaming and non-streaming agree, that usage counts are
right, and that a bad token is refused. Prints "N passed, N failed".
"""
import json, os, socket, subprocess, sys, tempfile, time

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

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

# llama.cpp's greedy continuation of a story prompt (an independent reference).
ref = json.load(open(os.path.join(mirror, "stories15M-Q8_0.ref.json")))["greedy"][0]
prompt, want, want_prompt_tokens = ref["prompt"], ref["generated_text"], len(ref["prompt_ids"])
work = tempfile.mkdtemp(prefix="apiary-test-openai-")
home = os.path.join(work, "n")
node = None
try:
    apiary("init", "--home", home)
    rc, out, err = apiary("model", "pull", "--home", home, "stories15M", "--from", mirror, "--quiet")
    check("stories15M pulled from the mirror", rc == 0, err)
    rc, token, err = apiary("token", "--home", home, "create")
    token = token.strip()
    port = free_port()
    node = subprocess.Popen([BIN, "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
                             "--http", "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                            stderr=open(home + ".log", "w"))
    for _ in range(100):
        if apiary("status", "--home", home)[0] == 0:
            break
        time.sleep(0.1)
    r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai_client.js"),
                        "http://127.0.0.1:%d/v1" % port, token, "stories15M", prompt],
                       capture_output=True, text=True, timeout=300)
    check("the openai client ran", r.returncode == 0, r.stderr[-2000:])
    res = json.loads(r.stdout) if r.returncode == 0 else {}
    check("models.list names stories15M", "stories15M" in res.get("models", []), repr(res.get("models")))
    c = res.get("completion", {})
    s = res.get("stream", {})
    u = c.get("usage") or {}
    check("completion usage: llama.cpp's prompt token count, 24 completion tokens, their sum",
          u.get("prompt_tokens") == want_prompt_tokens and u.get("completion_tokens") == 24 and
          u.get("total_tokens") == want_prompt_tokens + 24, repr(u))
    check("completion finish_reason is length", c.get("finish") == "length", repr(c.get("finish")))
    # Q8_0 greedy may fork late on small margins; the first words must be llama.cpp's.
    head = want[:40]
    check("completion text follows llama.cpp's greedy reference", c.get("text", "").startswith(head),
          repr(c.get("text", "")[:80]) + " vs " + repr(head))
    check("streamed text equals the non-streamed text", s.get("text") == c.get("text"),
          repr(s.get("text", "")[:80]))
    check("the stream came in many chunks", s.get("chunks", 0) >= 10, repr(s.get("chunks")))
    check("stream usage matches", (s.get("usage") or {}).get("completion_tokens") == 24, repr(s.get("usage")))
    check("a bad token gets 401", res.get("bad_token") == 401, repr(res.get("bad_token")))
    ch, chs = res.get("chat", {}), res.get("chat_stream", {})
    check("chat completion: an assistant message", ch.get("object") == "chat.completion" and
          ch.get("role") == "assistant" and len(ch.get("text") or "") > 0, repr(ch)[:300])
    cu = ch.get("usage") or {}
    check("chat usage adds up", cu.get("completion_tokens", 0) >= 1 and cu.get("completion_tokens", 99) <= 16 and
          cu.get("total_tokens") == cu.get("prompt_tokens", 0) + cu.get("completion_tokens", 0), repr(cu))
    check("streamed chat equals the non-streamed chat", chs.get("text") == ch.get("text") and
          chs.get("role") == "assistant", repr(chs)[:300])
finally:
    if node is not None:
        node.terminate()
        try:
            node.wait(15)
        except Exception:
            node.kill()
    subprocess.run(["rm", "-rf", work])
done()
