#!/usr/bin/python3
"""Interop with a real Mainline DHT implementation: libtorrent (Debian's python3-libtorrent).

A libtorrent session and an `apiary node` run on loopback and bootstrap from each other.
Checked both ways: a BEP 44 mutable item put by libtorrent is read by apiary, one put by
apiary is read by libtorrent, and BEP 5 get_peers finds the other side's announce_peer.
Prints "N passed, N failed" at the end. Nothing leaves 127.0.0.1.
"""
import hashlib, json, os, socket, subprocess, sys, tempfile, time
from ports import free_ports

try:
    import libtorrent as lt
except ImportError:
    print("python3-libtorrent is not installed (scripts/setup installs it); skipping")
    print("0 passed, 0 failed")
    sys.exit(0)

BIN = os.environ.get("APIARY_BIN", "build/apiary")
passed = failed = 0

def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("  ok    %s" % name)
    else:
        failed += 1
        print("  FAIL  %s %s" % (name, detail))

def apiary(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr

def wait_alert(ses, kind, pred=lambda a: True, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        ses.wait_for_alert(500)
        for a in ses.pop_alerts():
            if isinstance(a, kind) and pred(a):
                return a
    return None

work = tempfile.mkdtemp(prefix="apiary-test-lt-")
home = os.path.join(work, "node")
lt_port, a_port, a_dht = free_ports(3)
node = None
try:
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:%d" % lt_port,
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False, "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "alert_mask": lt.alert.category_t.all_categories,
    })
    rc, out, err = apiary("init", "--home", home, "--json")
    node_pk = json.loads(apiary("id", "--home", home, "--json")[1])["public_key"]
    # A port chosen free can be taken by another process before the node binds it; the node
    # then exits at once, and is started again on new ports (at most 3 times).
    for attempt in range(3):
        log = open(home + ".log", "w")
        node = subprocess.Popen([BIN, "node", "--home", home, "--listen", "127.0.0.1:%d" % a_port,
                                 "--dht-port", str(a_dht), "--bootstrap", "127.0.0.1:%d" % lt_port,
                                 "--no-lan", "--http", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(20):
            if node.poll() is not None or apiary("status", "--home", home, "--json")[0] == 0:
                break
            time.sleep(0.25)
        if node.poll() is None:
            break
        log.close()
        a_port, a_dht = free_ports(2)
    ses.add_dht_node(("127.0.0.1", a_dht))
    # Both sides know each other.
    ok = False
    for _ in range(60):
        rc, out, err = apiary("status", "--home", home, "--json")
        if rc == 0 and json.loads(out).get("dht", {}).get("nodes", 0) >= 1:
            ok = True
            break
        time.sleep(0.5)
    check("apiary's routing table holds the libtorrent node", ok, err)

    # 1. libtorrent puts a mutable item; apiary reads it.
    # A second identity made by apiary; libtorrent signs with the RFC 8032 expanded secret
    # (SHA-512 of the seed, clamped), which is what its API takes.
    other = os.path.join(work, "other")
    apiary("init", "--home", other)
    pk = bytes.fromhex(json.loads(apiary("id", "--home", other, "--json")[1])["public_key"])
    seed = bytes.fromhex(open(os.path.join(other, "identity.key")).read().split("ed25519-seed: ")[1].strip())
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    sk = bytes(h)
    ses.dht_put_mutable_item(sk, pk, b"hello from libtorrent", b"lt-salt")
    a = wait_alert(ses, lt.dht_put_alert)
    check("libtorrent stored its mutable item", a is not None and a.num_success > 0)
    rc, out, err = apiary("dht", "get", pk.hex(), "--salt", "lt-salt", "--home", home, "--json")
    got = json.loads(out) if rc == 0 else {}
    check("apiary reads libtorrent's mutable item", got.get("value") == "hello from libtorrent", out + err)

    # 2. apiary puts a mutable item; libtorrent reads it.
    rc, out, err = apiary("dht", "put", "hello from apiary", "--salt", "ap-salt", "--home", home, "--json")
    check("apiary stored its mutable item", rc == 0 and json.loads(out).get("stored", 0) > 0, out + err)
    item = None
    for _ in range(10):  # the put may still be spreading: ask again until it is there
        ses.dht_get_mutable_item(bytes.fromhex(node_pk), b"ap-salt")
        a = wait_alert(ses, lt.dht_mutable_item_alert, lambda a: a.salt in ("ap-salt", b"ap-salt"), timeout=5)
        try:
            item = a.item if a is not None else None
        except RuntimeError:  # libtorrent found no item yet (an empty entry)
            item = None
        if item:
            break
        time.sleep(0.5)
    value = item.get("value") if isinstance(item, dict) else item
    key = item.get("key") if isinstance(item, dict) else None
    # libtorrent hands out only items whose BEP 44 signature verified under the key.
    check("libtorrent reads apiary's signed mutable item",
          a is not None and value in (b"hello from apiary", "hello from apiary") and key == bytes.fromhex(node_pk),
          repr(item))

    # 3. libtorrent announces (a torrent added by infohash is announced on the DHT with the
    #    session's port; the Python binding cannot pass dht_announce's flags); apiary's
    #    get_peers finds it.
    ih1 = hashlib.sha1(b"apiary-interop-1").digest()
    atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + ih1.hex())
    atp.save_path = work
    ses.add_torrent(atp)
    want = "127.0.0.1:%d" % lt_port
    peers, out, err = [], "", ""
    for _ in range(40):
        rc, out, err = apiary("dht", "peers", ih1.hex(), "--home", home, "--json")
        peers = json.loads(out).get("peers", []) if rc == 0 else []
        if want in peers:
            break
        time.sleep(0.5)
    check("apiary's get_peers finds libtorrent's announce", want in peers, out + err)

    # 4. apiary announces; libtorrent's get_peers finds it.
    ih2 = hashlib.sha1(b"apiary-interop-2").digest()
    rc, out, err = apiary("dht", "announce", ih2.hex(), "--port", "7777", "--home", home, "--json")
    check("apiary announced", rc == 0 and json.loads(out).get("stored", 0) > 0, out + err)
    ses.dht_get_peers(lt.sha1_hash(ih2))
    a = wait_alert(ses, lt.dht_get_peers_reply_alert)
    lt_peers = [tuple(p) for p in a.peers()] if a is not None else []
    check("libtorrent's get_peers finds apiary's announce", ("127.0.0.1", 7777) in lt_peers, repr(lt_peers))
finally:
    if failed and os.path.exists(home + ".log"):
        print("---- apiary node log ----")
        print(open(home + ".log").read()[-3000:])
    if node is not None:
        node.terminate()
        try:
            node.wait(10)
        except Exception:
            node.kill()
    subprocess.run(["rm", "-rf", work])
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
