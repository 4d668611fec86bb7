#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGHUP under load: clients keep calling (keep-alive unary calls and
# streams) while wirepathd reloads 10 times, alternating two configurations
# (a model added and removed) and once a broken one. No request may fail;
# the model list follows the reloads; the broken file leaves the running
# configuration in place. Then SIGTERM drains a stream in flight: it
# completes and the daemon exits 0.
. "$(dirname "$0")/lib.sh" "$1"
wpd_serve svc "shm://@wpd-test-$$-r" --token-interval-us 1000
conf() {
	cat <<CONF
listen:
  - tcp: 127.0.0.1:0
auth: none
backends:
  - {name: local, native: "shm://@wpd-test-$$-r"}
models:
  - {name: wp-stub, backend: local}
CONF
	[ "$1" = 2 ] && echo "  - {name: wp-extra, backend: local}"
	echo "drain: 10s"
}
wpd_start < <(conf 1)
for _ in $(seq 100); do [ "$(curl -s "$WPD_URL/readyz")" = ready ] && break; sleep 0.05; done

python3 - "$WPD_URL" "$T/load.out" <<'PY' &
import http.client, json, sys, threading, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
stop = time.time() + 4
res = {"ok": 0, "bad": []}
def worker(stream):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = json.dumps({"model": "wp-stub", "stream": stream, "max_tokens": 5,
                       "messages": [{"role": "user", "content": "x"}]})
    while time.time() < stop:
        try:
            c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status == 200 and (not stream or data.endswith(b"data: [DONE]\n\n")):
                res["ok"] += 1
            else:
                res["bad"].append((r.status, data[-80:]))
            if r.getheader("connection", "").lower() == "close":
                c.close()
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        except Exception as e:
            res["bad"].append(repr(e))
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
ts = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
open(sys.argv[2], "w").write(json.dumps(res))
PY
load=$!
for i in $(seq 10); do
	sleep 0.3
	if [ "$i" = 5 ]; then
		echo "listen: [oops" >"$WPD_CONF"
	else
		conf $((i % 2 + 1)) >"$WPD_CONF"
	fi
	kill -HUP "$WPD_PID"
done
wait "$load"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("load: %d ok, %d failed %s" % (r["ok"], len(r["bad"]), r["bad"][:3])); sys.exit(1 if r["bad"] or r["ok"] < 50 else 0)' "$T/load.out" ||
	wpd_fail "requests failed across reloads"
grep -q "reload failed; still serving" "$WPD_LOG" || wpd_fail "the broken config was not refused"
n=$(grep -c "reloaded: generation" "$WPD_LOG")
[ "$n" = 9 ] || wpd_fail "$n good reloads, want 9"
# The last reload (i=10) installed config 1: no wp-extra.
curl -s "$WPD_URL/v1/models" | grep -q wp-extra && wpd_fail "model list did not follow the reload"
conf 2 >"$WPD_CONF"; kill -HUP "$WPD_PID"; sleep 0.3
curl -s "$WPD_URL/v1/models" | grep -q wp-extra || wpd_fail "wp-extra missing after reload"
ok "9 reloads + 1 refused under load, no request lost"

# Drain: a 1 s stream in flight when SIGTERM arrives completes.
curl -sN "$WPD_URL/v1/chat/completions" -o "$T/drain" \
	-d '{"model":"wp-stub","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"x"}]}' &
c=$!
sleep 0.2
kill -TERM "$WPD_PID"
wait "$c"
tail -c 14 "$T/drain" | grep -q 'data: \[DONE\]' || wpd_fail "stream cut by the drain"
wait "$WPD_PID"; rc=$?
[ $rc = 0 ] || wpd_fail "exit status $rc after drain"
grep -q "drained" "$WPD_LOG" || wpd_fail "no drain line"
ok "SIGTERM drained a stream in flight and exited 0"
echo PASS
