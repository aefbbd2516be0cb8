"""Measures what a flood of forged `/ingest` requests costs on disk: starts `hookrelay serve` (loopback only,
port 18071) on a fresh data directory, creates a Stripe source, sends N requests with a wrong signature from 8
connections, stops the server and prints the requests, statuses and the database growth.

usage: python3 scripts/ingest_flood.py BINARY DATA_DIR N   (run it with N=0 too, for the baseline size)"""
import http.client, json, os, sqlite3, subprocess, sys, threading, time

binary, data_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
port, token = 18071, "bench-admin-token"
env = dict(os.environ, HOOKRELAY_LISTEN=f"127.0.0.1:{port}", HOOKRELAY_DATA_DIR=data_dir,
           HOOKRELAY_ADMIN_TOKEN=token, HOOKRELAY_LOG="error")
server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=headers or {})
    r = conn.getresponse(); data = r.read(); conn.close()
    return r.status, data

auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
for _ in range(200):
    try:
        call("GET", "/api/v1/health/"); break
    except OSError:
        time.sleep(0.05)
_, app = call("POST", "/api/v1/app/", {"name": "bench"}, auth)
app = json.loads(app)["id"]
status, src = call("POST", "/api/v1/source/", {"name": "s", "provider": "stripe", "secret": "whsec_x", "appId": app}, auth)
src = json.loads(src)["id"]

def db_bytes():
    return sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir) if f.startswith("hookrelay.db"))

body = json.dumps({"id": "evt_forged", "type": "invoice.paid", "data": {"object": "x" * 200}})
headers = {"content-type": "application/json", "stripe-signature": f"t={int(time.time())},v1=" + "0" * 64}
counts, lock = {}, threading.Lock()
def worker(k):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(k):
        conn.request("POST", f"/ingest/{src}", body=body, headers=headers)
        r = conn.getresponse(); r.read()
        with lock: counts[r.status] = counts.get(r.status, 0) + 1
threads = [threading.Thread(target=worker, args=(n // 8,)) for _ in range(8)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.time() - start
_, stats = call("GET", f"/api/v1/source/{src}/stats/", headers=auth)
server.terminate(); server.wait(timeout=30)
# Checkpointed, so the WAL's transient size does not count: what stays on disk.
db = sqlite3.connect(os.path.join(data_dir, "hookrelay.db"))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
rows = {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("inbound_events", "inbound_rejections")
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()}
db.close()
print(json.dumps({"requests": sum(counts.values()), "statuses": counts, "seconds": round(elapsed, 1),
                  "rejected_in_stats": json.loads(stats)["rejected"], "rows": rows,
                  "db_bytes_after_checkpoint": db_bytes()}))
