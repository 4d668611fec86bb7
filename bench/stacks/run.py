#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The real-stack bench (issue 14; what `make demo` runs; docs/performance.md
"Real stacks", bench/stacks/README.md).

How many host cores does a whole agent stack burn at a given agent-step rate,
and at which rate does it stop meeting its latency SLO? The same open-loop
agents (wp_agents: Poisson step arrivals, tokens at the model's pace, tools
with service times) drive, one stack at a time and interleaved rate by rate:

  conventional  agents -> HTTP/1.1 + JSON + SSE -> nginx (Debian) ->
                wp_http_stub (the model as an OpenAI SSE service, tools as MCP
                over streamable HTTP)
  mesh          (--mesh) the same with an nginx sidecar on each side of the
                gateway: three nginx hops, as a service mesh deploys it
  wirepathd     agents -> the same HTTP/JSON/SSE -> wirepathd -> shm ->
                `wirepath serve`
  tcp, uring, shm  agents -> the wirepath protocol -> `wirepath serve`

Each stack's processes (agents included) run under their own wp_treemeter,
whose inherited perf counters give the tree's CPU time, context switches and
syscalls; a cgroup per stack (cpuacct on v1, cpu.stat on v2), where one can
be made, gives the CPU figure, and the sum of the tree's /proc/PID/stat times
is the independent check (they must agree within 10 %). Copied bytes: what
crossed the loopback device in the window (each byte is copied into and out
of the kernel once per hop).

A rate point passes its SLO when every measured step finished without error
and the p99 token gap exceeds the model's pace by at most --slo-token-ms and
the p99 tool-call RTT exceeds its service time by at most --slo-tool-ms. A
stack's knee is its highest passing rate; the sweep of a stack stops at its
first failing rate. The crossover: at the model's rate R (--model-steps-per-s,
or measured from an OpenAI-compatible --model-url), the cores each stack
needs, whether the host or the model is the bottleneck, and how many agents a
host core sustains at SLO.

Output: a table and a verdict on stdout, JSON (--json), a gnuplot SVG
(--svg). Every process is stopped by PID at exit; files live in a temp dir.
"""
import argparse
import atexit
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The step, from docs/workload.md (agentic workload, paced): --full uses it
# whole; the default (demo) run shortens the model call and the tool service
# time so a rate point reaches steady state in about a second (see
# bench/stacks/README.md: the per-token and per-call costs are the same, a
# step just has fewer tokens).
WORKLOADS = {
    "full": dict(tokens=520, token_interval_us=25000, fanout=8, tool_bytes=4096,
                 tool_service_us=1600000, mem_lookups=2, mem_bytes=16384, mem_service_us=5000),
    "demo": dict(tokens=32, token_interval_us=25000, fanout=8, tool_bytes=4096,
                 tool_service_us=100000, mem_lookups=2, mem_bytes=16384, mem_service_us=5000),
}
# The node's decode rate behind the default R (docs/workload.md: an 8-GPU
# node, 8B model, about 100k output tokens/s): R = this / tokens per step.
NODE_TOKENS_PER_S = 100000.0
ALL_STACKS = ["conventional", "mesh", "wirepathd", "tcp", "uring", "shm"]
DEFAULT_STACKS = ["conventional", "wirepathd", "tcp", "uring", "shm"]


def die(msg):
    print("run.py: " + msg, file=sys.stderr)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, pid_alive, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            if not pid_alive():
                return False
            time.sleep(0.02)
    return False


def lo_bytes():
    try:
        with open("/sys/class/net/lo/statistics/tx_bytes") as f:
            return int(f.read())
    except OSError:
        return None


class Cgroup:
    """A cgroup for one stack's tree, where this host lets us make one."""

    def __init__(self, name):
        self.path = None
        self.kind = None
        self.why = ""
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        try:
            if os.path.exists(v2):
                p = "/sys/fs/cgroup/" + name
                os.mkdir(p)
                self.path, self.kind = p, "v2 cpu.stat"
            elif os.path.isdir("/sys/fs/cgroup/cpuacct"):
                p = "/sys/fs/cgroup/cpuacct/" + name
                os.mkdir(p)
                self.path, self.kind = p, "v1 cpuacct.usage"
            else:
                self.why = "no cgroup v2 and no v1 cpuacct hierarchy"
        except OSError as e:
            self.why = "cannot make a cgroup: %s" % e.strerror

    def join(self, pid):
        if not self.path:
            return
        try:
            with open(self.path + "/cgroup.procs", "w") as f:
                f.write(str(pid))
        except OSError as e:
            self.why = "cannot join the cgroup: %s" % e.strerror
            self.remove()

    def usage_ns(self):
        if not self.path:
            return None
        try:
            if self.kind.startswith("v2"):
                with open(self.path + "/cpu.stat") as f:
                    for line in f:
                        k, v = line.split()
                        if k == "usage_usec":
                            return int(v) * 1000
                return None
            with open(self.path + "/cpuacct.usage") as f:
                return int(f.read())
        except OSError:
            return None

    def remove(self):
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    break
                except OSError:
                    time.sleep(0.05)
            self.path = None


class Tree:
    """One stack's processes under a wp_treemeter."""

    def __init__(self, bench, name):
        self.bench = bench
        self.name = name
        self.cg = Cgroup("wirepath-bench-%d-%s" % (os.getpid(), name))
        self.tm = subprocess.Popen([bench.bin("wp_treemeter")], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, bufsize=1)
        self.cg.join(self.tm.pid)
        ready = self.tm.stdout.readline().rstrip("\n").split("\t")
        if not ready or ready[0] != "ready":
            die("wp_treemeter did not start: %r" % ready)
        self.counters = dict(kv.split("=", 1) for kv in ready[1:])
        self.pids = []

    def cmd(self, *fields):
        try:
            self.tm.stdin.write("\t".join(str(f) for f in fields) + "\n")
            self.tm.stdin.flush()
        except BrokenPipeError:
            die("%s: wp_treemeter is gone (interrupted?); its processes were stopped" % self.name)
        line = self.tm.stdout.readline()
        if not line:
            die("%s: wp_treemeter is gone (interrupted?); its processes were stopped" % self.name)
        return line.rstrip("\n")

    def spawn(self, log, argv):
        r = self.cmd("spawn", log, *argv)
        if not r.startswith("pid "):
            die("%s: could not start %s: %s" % (self.name, argv[0], r))
        pid = int(r.split()[1])
        self.pids.append(pid)
        return pid

    def alive(self, pid):
        r = self.cmd("wait", pid, 0)
        return r.startswith("running")

    def wait(self, pid, ms):
        r = self.cmd("wait", pid, int(ms))
        if r.startswith("exited"):
            return int(r.split()[2])
        return None

    def perf(self):
        v = self.cmd("read").split()
        return dict(task_clock_ns=int(v[1]), ctxsw=int(v[2]), syscalls=int(v[3]))

    def proc(self):
        """utime+stime (and children's) of every process in the tree, in
        seconds, from /proc/PID/stat: the independent CPU measure."""
        kids = {}
        stats = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue
            rest = s[s.rindex(")") + 2:].split()
            ppid = int(rest[1])
            kids.setdefault(ppid, []).append(int(d))
            stats[int(d)] = [int(x) for x in rest[11:15]]  # utime stime cutime cstime
        hz = os.sysconf("SC_CLK_TCK")
        todo, user, system = [self.tm.pid], 0, 0
        while todo:
            p = todo.pop()
            if p in stats:
                u, s, cu, cs = stats[p]
                user += u + cu
                system += s + cs
            todo.extend(kids.get(p, []))
        return user / hz, system / hz

    def close(self):
        try:
            self.tm.stdin.close()
            self.tm.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.tm.kill()
            self.tm.wait()
        self.cg.remove()


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.tmp = tempfile.mkdtemp(prefix="wirepath-stacks-")
        atexit.register(shutil.rmtree, self.tmp, True)  # on errors and interrupts too
        self.trees = {}
        self.w = dict(WORKLOADS["full" if args.full else "demo"])
        for k in self.w:
            v = getattr(args, k, None)
            if v is not None:
                self.w[k] = v
        # the model decodes in lockstep batches: one token per stream per step
        self.decode_step = self.w["token_interval_us"] if args.decode_step_us is None else args.decode_step_us

    def bin(self, name):
        p = os.path.join(self.build, name)
        if not os.access(p, os.X_OK):
            die("%s is not built (ninja -C %s)" % (p, self.build))
        return p

    def log(self, name):
        return os.path.join(self.tmp, name + ".log")

    # ---- stacks ---------------------------------------------------------

    def tls_files(self):
        """A self-signed certificate for 127.0.0.1 (--tls): the edge's."""
        crt, key = os.path.join(self.tmp, "edge.crt"), os.path.join(self.tmp, "edge.key")
        if not os.path.exists(crt):
            r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                                "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                               capture_output=True, text=True)
            if r.returncode:
                die("openssl could not make the edge's certificate: %s" % r.stderr[-300:])
        return crt, key

    def nginx(self, tree, name, port, upstream_port, tls=False):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes auto;
worker_rlimit_nofile 65536;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 16384; }}
http {{
	access_log off;
	client_body_temp_path {d}/body;
	proxy_temp_path {d}/proxy;
	fastcgi_temp_path {d}/fastcgi;
	uwsgi_temp_path {d}/uwsgi;
	scgi_temp_path {d}/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
	upstream up {{
		server 127.0.0.1:{up};
		keepalive 1024;
		keepalive_requests 1000000;
		keepalive_timeout 300s;
	}}
	server {{
		listen 127.0.0.1:{port} backlog=16384{ssl};
{sslconf}		location / {{
			proxy_pass http://up;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
			proxy_read_timeout 300s;
		}}
	}}
}}
""".format(d=d, up=upstream_port, port=port, ssl=" ssl" if tls else "",
           sslconf=("\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;\n\t\tssl_protocols TLSv1.3;\n"
                    % self.tls_files()) if tls else ""))
        pid = tree.spawn(self.log(name), ["nginx", "-p", d, "-e", d + "/error.log", "-c", conf])
        if not wait_port(port, lambda: tree.alive(pid)):
            die("nginx (%s) did not start: %s" % (name, open(self.log(name)).read()[-500:]))

    def http_stub(self, tree, name):
        port = free_port()
        pid = tree.spawn(self.log(name), [self.bin("wp_http_stub"), "--listen", "127.0.0.1:%d" % port,
                                          "--token-interval-us", self.w["token_interval_us"],
                                          "--decode-step-us", self.decode_step, "--conns", 60000, "--quiet"])
        if not wait_port(port, lambda: tree.alive(pid)):
            die("wp_http_stub did not start: %s" % open(self.log(name)).read()[-500:])
        return port

    def serve(self, tree, name, uri):
        pf = os.path.join(self.tmp, name + ".port")
        pid = tree.spawn(self.log(name), [self.bin("wirepath"), "serve", "--listen", uri, "--port-file", pf,
                                          "--token-interval-us", self.w["token_interval_us"],
                                          "--decode-step-us", self.decode_step])
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if os.path.exists(pf) and os.path.getsize(pf) > 0:
                return open(pf).read().strip()
            if not tree.alive(pid):
                break
            time.sleep(0.02)
        die("wirepath serve (%s) did not start: %s" % (uri, open(self.log(name)).read()[-500:]))

    def http_target(self, port):
        if self.args.tls:
            return ["--mode", "http", "--target", "https://127.0.0.1:%d" % port, "--cafile", self.tls_files()[0]]
        return ["--mode", "http", "--target", "http://127.0.0.1:%d" % port]

    def setup(self, stack):
        """Start a stack's services; return the agents' target arguments, or
        None with the reason when this host cannot run it."""
        if stack in ("uring", "shm", "tcp"):
            probe = subprocess.run([self.bin("wirepath"), "probe", "--json"], capture_output=True, text=True)
            if stack == "uring" and '"name":"uring","ok":true' not in probe.stdout:
                return None, "io_uring unavailable here (wirepath probe)"
        tree = Tree(self, stack)
        self.trees[stack] = tree
        name = "%s-%d" % (stack, os.getpid())
        if stack == "conventional":
            up = self.http_stub(tree, "conventional-stub")
            port = free_port()
            self.nginx(tree, "conventional-nginx", port, up, tls=self.args.tls)
            return self.http_target(port), ""
        if stack == "mesh":
            up = self.http_stub(tree, "mesh-stub")
            p_in, p_gw, p_out = free_port(), free_port(), free_port()
            self.nginx(tree, "mesh-sidecar-server", p_in, up)
            self.nginx(tree, "mesh-gateway", p_gw, p_in)
            self.nginx(tree, "mesh-sidecar-agent", p_out, p_gw, tls=self.args.tls)
            return self.http_target(p_out), ""
        if stack == "wirepathd":
            uri = "shm://@wirepath-stacks-" + name
            self.serve(tree, "wirepathd-serve", uri)
            port = free_port()
            conf = os.path.join(self.tmp, "wirepathd.yaml")
            with open(conf, "w") as f:
                tls = ", tls: {cert: %s, key: %s}" % self.tls_files() if self.args.tls else ""
                f.write("""listen:
  - {tcp: "127.0.0.1:%d"%s}
auth: none
backends:
  - {name: local, native: "%s"}
models:
  - {name: wp-stub, backend: local}
mcp:
  servers:
    - {name: tools, backend: local, prefix: t_}
limits: {conns: 60000}
""" % (port, tls, uri))
            pid = tree.spawn(self.log("wirepathd"), [self.bin("wirepathd"), "--config", conf])
            if not wait_port(port, lambda: tree.alive(pid)):
                die("wirepathd did not start: %s" % open(self.log("wirepathd")).read()[-800:])
            return self.http_target(port) + ["--tool", "t_sized"], ""
        uri = {"tcp": "tcp://127.0.0.1:0", "uring": "uring://127.0.0.1:0",
               "shm": "shm://@wirepath-stacks-" + name}[stack]
        got = self.serve(tree, stack + "-serve", uri)
        if stack != "shm":
            uri = "%s://127.0.0.1:%s" % (stack, got)
        return ["--mode", "native", "--target", uri], ""

    # ---- one rate point ----------------------------------------------------

    def snapshot(self, tree):
        u, s = tree.proc()
        return dict(t=time.monotonic(), perf=tree.perf(), cg=tree.cg.usage_ns(), user=u, sys=s, lo=lo_bytes())

    def point(self, stack, target, rate):
        a = self.args
        tree = self.trees[stack]
        w = self.w
        grace = a.grace if a.grace is not None else max(1.0, (w["tokens"] * w["token_interval_us"] +
                                                             w["tool_service_us"] + w["mem_service_us"]) / 1e6 + 1.0)
        log = self.log("agents-%s-%g" % (stack, rate))
        argv = [self.bin("wp_agents")] + target + [
            "--rate", rate, "--warmup", a.warmup, "--duration", a.duration, "--grace", grace,
            "--tokens", w["tokens"], "--token-interval-us", w["token_interval_us"], "--fanout", w["fanout"],
            "--tool-bytes", w["tool_bytes"], "--tool-service-us", w["tool_service_us"],
            "--mem-lookups", w["mem_lookups"], "--mem-bytes", w["mem_bytes"],
            "--mem-service-us", w["mem_service_us"], "--seed", a.seed, "--late-ms", a.slo_token_ms, "--verbose"]
        if a.arrivals == "fixed":
            argv += ["--arrivals", "fixed"]
        pid = tree.spawn(log, argv)
        time.sleep(a.warmup)
        s0 = self.snapshot(tree)
        time.sleep(a.duration)
        s1 = self.snapshot(tree)
        st = tree.wait(pid, (grace + 30) * 1000)
        if st is None:
            die("%s: wp_agents still running 30 s after its grace time" % stack)
        out = [l for l in open(log).read().splitlines() if l.startswith("{")]
        if st != 0 or not out:
            die("%s at %g steps/s: wp_agents exited %s: %s" % (stack, rate, st, open(log).read()[-800:]))
        r = json.loads(out[-1])
        wall = s1["t"] - s0["t"]
        steps = max(1, r["steps_started"])
        # CPU per step: the window's CPU over the steps the offered rate puts
        # in it (steady state), not over the Poisson count of arrivals
        offered = rate * wall
        perf_cpu = (s1["perf"]["task_clock_ns"] - s0["perf"]["task_clock_ns"]) / 1e9 \
            if s0["perf"]["task_clock_ns"] >= 0 else None
        cg_cpu = (s1["cg"] - s0["cg"]) / 1e9 if s0["cg"] is not None and s1["cg"] is not None else None
        proc_cpu = (s1["user"] + s1["sys"]) - (s0["user"] + s0["sys"])
        if cg_cpu is not None:
            cpu, src = cg_cpu, "cgroup " + tree.cg.kind
        elif perf_cpu is not None:
            cpu, src = perf_cpu, "perf task-clock (inherited)"
        else:
            cpu, src = proc_cpu, "/proc/PID/stat sum"
        user = s1["user"] - s0["user"]
        system = s1["sys"] - s0["sys"]
        p = dict(rate=rate, wall_s=round(wall, 3), steps=r["steps_started"], steps_done=r["steps_done"],
                 steps_failed=r["steps_failed"], steps_unfinished=r["steps_unfinished"],
                 errors=r["errors"], late=r["late"], first_error=r.get("first_error"),
                 cores=cpu / wall, cpu_us_per_step=cpu / offered * 1e6, cpu_source=src,
                 cpu_check=dict(primary_s=cpu, proc_s=proc_cpu, perf_s=perf_cpu, cgroup_s=cg_cpu),
                 user_frac=user / (user + system) if user + system > 0 else None)
        if s0["perf"]["syscalls"] >= 0:
            p["syscalls_per_step"] = (s1["perf"]["syscalls"] - s0["perf"]["syscalls"]) / offered
        if s0["perf"]["ctxsw"] >= 0:
            p["ctxsw_per_step"] = (s1["perf"]["ctxsw"] - s0["perf"]["ctxsw"]) / offered
        if s0["lo"] is not None:
            p["lo_bytes_per_step"] = (s1["lo"] - s0["lo"]) / offered
        for k in ("step_ms", "tool_us", "tool_excess_us", "ttft_us", "token_gap_us", "token_excess_us"):
            p[k] = r[k]
        errs = sum(r["errors"].values())
        why = []
        if errs or r["steps_failed"] or r["steps_unfinished"]:
            why.append("%d errors, %d failed, %d unfinished steps" % (errs, r["steps_failed"], r["steps_unfinished"]))
        if r["token_excess_us"]["p99"] > a.slo_token_ms * 1000:
            why.append("p99 token gap %.1f ms over the pace" % (r["token_excess_us"]["p99"] / 1000))
        if r["tool_excess_us"]["p99"] > a.slo_tool_ms * 1000:
            why.append("p99 tool call %.1f ms over its service time" % (r["tool_excess_us"]["p99"] / 1000))
        # Falling behind shows before the gaps do: steps that started more
        # than the token margin late (the agents' loop could not keep up), and
        # first tokens slower than one decode step plus the margin.
        if r["late"] + r["waited"] > 0.01 * steps:
            why.append("%d of %d steps started late" % (r["late"] + r["waited"], steps))
        if r["ttft_us"]["p99"] > self.decode_step + a.slo_token_ms * 1000:
            why.append("p99 time to first token %.1f ms" % (r["ttft_us"]["p99"] / 1000))
        p["slo_ok"] = not why
        p["slo_why"] = "; ".join(why)
        # concurrency: agents with a step in flight (Little's law)
        p["agents"] = rate * (r["step_ms"]["mean"] / 1000.0)
        return p


def measure_model_rate(url, tokens_per_step, model, key, streams):
    """The model's aggregate decode rate: `streams` chat completions at once
    against an OpenAI-compatible endpoint (a batching server's throughput
    grows with its batch; raise --model-streams until it stops growing),
    total tokens over the time they took, divided by tokens per step."""
    import threading
    import urllib.request
    body = json.dumps({"model": model, "stream": True, "max_tokens": 256,
                       "messages": [{"role": "user", "content": "Count from one to two hundred."}]}).encode()
    hdr = {"Content-Type": "application/json"}
    if key:
        hdr["Authorization"] = "Bearer " + key
    counts, errors = [0] * streams, []

    def one(i):
        req = urllib.request.Request(url.rstrip("/") + "/v1/chat/completions", data=body, headers=hdr)
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                for line in resp:
                    if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                        d = json.loads(line[6:])
                        c = (d.get("choices") or [{}])[0].get("delta", {}).get("content")
                        if c:
                            counts[i] += 1
        except Exception as e:  # reported below, with the endpoint's words
            errors.append(str(e))
    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    n = sum(counts)
    if errors or n < 2:
        die("--model-url %s: %d tokens, %d of %d streams failed (%s)" % (url, n, len(errors), streams,
                                                                         errors[0] if errors else "no tokens"))
    tps = n / dt
    return tps, tps / tokens_per_step, ("measured from %s: %d streams at once, %d tokens in %.1f s = %.0f tokens/s"
                                        % (url, streams, n, dt, tps))


def svg(path, res, stacks, tmp, model_rate):
    if not shutil.which("gnuplot"):
        print("run.py: gnuplot missing: no chart", file=sys.stderr)
        return
    dat = os.path.join(tmp, "chart.dat")
    with open(dat, "w") as f:
        for s in stacks:
            f.write("# %s\n" % s)
            for p in res[s]["points"]:
                f.write("%g %g %g %d\n" % (p["rate"], p["cores"], p["token_excess_us"]["p99"] / 1000.0,
                                             1 if p["slo_ok"] else 0))
            f.write("\n\n")
    plots1, plots2 = [], []
    for i, s in enumerate(stacks):
        plots1.append("'%s' index %d using 1:2 with linespoints lw 2 title '%s'" % (dat, i, s))
        plots2.append("'%s' index %d using 1:3 with linespoints lw 2 title '%s'" % (dat, i, s))
    knees = []
    for i, s in enumerate(stacks):
        k = res[s].get("knee")
        if k:
            knees.append("set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc %d" % (k["rate"], k["rate"], i + 1))
    g = """set terminal svg size 1000,800 dynamic background '#ffffff'
set output '%s'
set multiplot layout 2,1 title 'wirepath real-stack bench: whole-stack host cores vs agent-step rate (knees dashed)'
set logscale x
set xlabel 'agent steps/s offered (open loop)'
set ylabel 'host cores (agents + proxies + services)'
set key left top
set grid
%s
%s
plot %s
unset arrow
set ylabel 'p99 token gap over the pace (ms)'
set logscale y
plot %s
unset multiplot
""" % (path, "\n".join(knees), "set arrow from %g, graph 0 to %g, graph 1 nohead lc rgb 'black' lw 2" % (model_rate, model_rate)
       if model_rate else "", ", ".join(plots1), ", ".join(plots2))
    gp = os.path.join(tmp, "chart.gp")
    with open(gp, "w") as f:
        f.write(g)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode:
        print("run.py: gnuplot failed: %s" % r.stderr[-300:], file=sys.stderr)


def goal_lines(res, stacks):
    """The issue's performance goals, judged on this run's numbers."""
    goals = []

    def at_r(s):
        return res.get(s, {}).get("at_model_rate", {}).get("cores")

    conv = at_r("conventional")
    for s, lim, label in (("shm", 1 / 20, "1/20"), ("wirepathd", 1 / 3, "1/3")):
        c = at_r(s)
        if conv and c is not None:
            goals.append(dict(goal="%s_vs_conventional" % s, value=c / conv, limit=lim, met=c / conv <= lim,
                              text="%s: host cores at R %.3f of the conventional stack's (goal <= %s)"
                                   % (s, c / conv, label)))
    for s in ("shm",):
        pts = res.get(s, {}).get("points", [])
        k = res.get(s, {}).get("knee")
        if k and len(pts) > 1:
            low = min(pts, key=lambda p: abs(math.log(p["rate"] / (0.2 * k["rate"]))))
            if low["rate"] < k["rate"]:
                r = low["cpu_us_per_step"] / k["cpu_us_per_step"]
                goals.append(dict(goal="%s_idle_adapts" % s, value=r, limit=1.5, met=r <= 1.5,
                                  text="%s: CPU/step at %g steps/s is %.2fx its value at the knee (%g) (goal <= 1.5x)"
                                       % (s, low["rate"], r, k["rate"])))
    tcp = {p["rate"]: p for p in res.get("tcp", {}).get("points", [])}
    ur = {p["rate"]: p for p in res.get("uring", {}).get("points", [])}
    common = sorted(set(tcp) & set(ur))
    if common:
        cpu = max(ur[r]["cpu_us_per_step"] / tcp[r]["cpu_us_per_step"] for r in common)
        goals.append(dict(goal="uring_cpu_vs_tcp", value=cpu, limit=1.0, met=cpu <= 1.0,
                          text="uring: CPU/step at most %.2fx tcp's over %d common rates (goal <= 1x at every rate)"
                               % (cpu, len(common))))
        if all("syscalls_per_step" in tcp[r] and "syscalls_per_step" in ur[r] for r in common):
            sc = max(ur[r]["syscalls_per_step"] / tcp[r]["syscalls_per_step"] for r in common)
            goals.append(dict(goal="uring_syscalls_vs_tcp", value=sc, limit=1 / 3, met=sc <= 1 / 3,
                              text="uring: syscalls/step at most %.2fx tcp's (goal <= 1/3 at every rate)" % sc))
    return goals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--full", action="store_true", help="the whole workload step (520 tokens, 1.6 s tools) and a long sweep")
    ap.add_argument("--stacks", default=",".join(DEFAULT_STACKS), help="comma list of " + ",".join(ALL_STACKS))
    ap.add_argument("--mesh", action="store_true", help="add the mesh stack (three nginx hops)")
    ap.add_argument("--rates", help="comma list of steps/s to sweep (default: demo 50,150,450,1350; --full doubling from 25)")
    ap.add_argument("--warmup", type=float, help="seconds before each window (default: demo 1.5, full 20)")
    ap.add_argument("--duration", type=float, help="measured seconds per rate point (default: demo 2, full 20)")
    ap.add_argument("--grace", type=float, help="after a window, time for its steps to finish (default: one step)")
    ap.add_argument("--tls", action="store_true",
                    help="TLS 1.3 at the edge of the HTTP stacks (nginx, wirepathd), the agents verifying it")
    ap.add_argument("--arrivals", default="poisson", choices=["poisson", "fixed"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slo-token-ms", type=float, default=10.0, help="p99 token gap over the pace (10 ms)")
    ap.add_argument("--slo-tool-ms", type=float, default=10.0, help="p99 tool RTT over its service time (10 ms)")
    ap.add_argument("--model-steps-per-s", type=float, help="the model's step rate R")
    ap.add_argument("--model-url", help="measure R from this OpenAI-compatible endpoint (streams one completion)")
    ap.add_argument("--model-name", default="default", help="the model id --model-url serves")
    ap.add_argument("--model-streams", type=int, default=32,
                    help="--model-url: streams at once (its aggregate rate; the key, if any, from $WP_MODEL_KEY)")
    ap.add_argument("--node-tokens-per-s", type=float, default=NODE_TOKENS_PER_S,
                    help="without --model-steps-per-s: R = this / tokens per step (100000)")
    for k in WORKLOADS["demo"]:
        ap.add_argument("--" + k.replace("_", "-"), dest=k, type=int)
    ap.add_argument("--decode-step-us", type=int,
                    help="the model services emit every stream's token on a common clock of this period, "
                         "as a batching model server does (default: the token interval; 0: a timer per stream)")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    ap.add_argument("--closed-loop", action="store_true",
                    help="run the closed-loop maximum-throughput bench of the native paths instead "
                         "(wirepath bench --paths tcp,uring,shm)")
    ap.add_argument("--max-s", type=float, default=0, help="stop sweeping once this many seconds have passed")
    a = ap.parse_args()

    if a.closed_loop:
        argv = [os.path.join(a.build, "wirepath"), "bench", "--paths", "tcp,uring,shm"]
        if a.json:
            argv += ["--json", a.json]
        if a.svg:
            argv += ["--svg", a.svg]
        os.execv(argv[0], argv)
    if a.warmup is None:
        a.warmup = 20.0 if a.full else 1.5
    if a.duration is None:
        a.duration = 20.0 if a.full else 2.0
    stacks = [s for s in a.stacks.split(",") if s]
    if a.mesh and "mesh" not in stacks:
        stacks.insert(1, "mesh")
    for s in stacks:
        if s not in ALL_STACKS:
            die("unknown stack '%s' (known: %s)" % (s, ", ".join(ALL_STACKS)))
    if any(s in ("conventional", "mesh") for s in stacks) and not shutil.which("nginx"):
        die("nginx is missing: run scripts/deps.sh (nginx-light)")
    if a.rates:
        rates = [float(x) for x in a.rates.split(",")]
    elif a.full:
        rates = [25 * 2 ** i for i in range(10)]
    else:
        rates = [50, 150, 450, 1350]
    b = Bench(a)
    w = b.w
    model_basis = None
    if a.model_url:
        tps, model_rate, model_basis = measure_model_rate(a.model_url, w["tokens"], a.model_name,
                                                          os.environ.get("WP_MODEL_KEY"), a.model_streams)
    elif a.model_steps_per_s:
        model_rate, model_basis = a.model_steps_per_s, "given (--model-steps-per-s)"
    else:
        model_rate = a.node_tokens_per_s / w["tokens"]
        model_basis = ("an 8-GPU node decoding an 8B model at ~%dk output tokens/s / %d tokens per step "
                       "(docs/workload.md)" % (a.node_tokens_per_s / 1000, w["tokens"]))
    ncpu = os.cpu_count() or 1
    t_start = time.monotonic()
    res = {}
    try:
        targets = {}
        for s in stacks:
            tgt, why = b.setup(s)
            res[s] = dict(points=[], unavailable=why or None)
            if tgt:
                targets[s] = tgt
        print("workload: %d tokens per step at %.0f ms per token (decode step %.0f ms), %d tool calls (%d B, %.0f ms) and %d memory "
              "lookups (%d B, %.0f ms) per step; %s arrivals; windows %.1f s after %.1f s"
              % (w["tokens"], w["token_interval_us"] / 1000, b.decode_step / 1000, w["fanout"], w["tool_bytes"],
                 w["tool_service_us"] / 1000, w["mem_lookups"], w["mem_bytes"], w["mem_service_us"] / 1000,
                 a.arrivals, a.duration, a.warmup), flush=True)
        live = [s for s in stacks if s in targets]
        for rate in rates:
            if a.max_s and time.monotonic() - t_start > a.max_s:
                print("(sweep stopped: --max-s %.0f s reached)" % a.max_s)
                break
            for s in list(live):
                p = b.point(s, targets[s], rate)
                res[s]["points"].append(p)
                print("  %-12s %7g steps/s: %5.2f cores, %8.0f us CPU/step, p99 token +%.1f ms, p99 tool +%.1f ms%s"
                      % (s, rate, p["cores"], p["cpu_us_per_step"], p["token_excess_us"]["p99"] / 1000,
                         p["tool_excess_us"]["p99"] / 1000, "" if p["slo_ok"] else "  SLO broken: " + p["slo_why"]),
                      flush=True)
                if not p["slo_ok"]:
                    live.remove(s)
            if not live:
                break
    finally:
        for t in b.trees.values():
            t.close()
    # ---- results --------------------------------------------------------
    for s in stacks:
        r = res[s]
        ok = [p for p in r["points"] if p["slo_ok"]]
        r["knee"] = None
        if ok:
            k = max(ok, key=lambda p: p["rate"])
            k_end = k is r["points"][-1]
            r["knee"] = dict(rate=k["rate"], cores=k["cores"], cpu_us_per_step=k["cpu_us_per_step"],
                             steps_per_core=k["rate"] / max(k["cores"], 1e-9),
                             agents_per_core=k["agents"] / max(k["cores"], 1e-9),
                             beyond_sweep=k_end)
            # cores at R: from the measured point nearest R at or below the knee
            near = min(ok, key=lambda p: abs(math.log(p["rate"] / model_rate)))
            need = near["cpu_us_per_step"] * model_rate / 1e6
            # host-bound: more cores than the host has, or an SLO that broke
            # below R; a knee that is only the end of the sweep says
            # nothing about R beyond it
            broke_below = not k_end and model_rate > k["rate"]
            r["at_model_rate"] = dict(cores=need, from_rate=near["rate"],
                                      extrapolated=model_rate > near["rate"] * 1.5,
                                      host_bound=need > ncpu or broke_below,
                                      ratio=(need / ncpu) if need > ncpu else (ncpu / need if need else None))
    out = dict(workload=dict(w, decode_step_us=b.decode_step), tls_edge=a.tls, stacks=stacks, rates=rates, model_steps_per_s=model_rate, model_basis=model_basis,
               host_cores=ncpu, slo=dict(token_ms=a.slo_token_ms, tool_ms=a.slo_tool_ms),
               warmup_s=a.warmup, duration_s=a.duration, arrivals=a.arrivals, results=res,
               cpu_source=next((p["cpu_source"] for s in stacks for p in res[s]["points"]), None))
    print()
    print("%-12s %8s %6s %10s %9s %9s %10s %9s %9s %s" % ("stack", "steps/s", "cores", "CPU us/st", "sysc/st",
                                                        "ctxsw/st", "lo B/st", "tok p99+", "tool p99+", "SLO"))
    for s in stacks:
        if res[s]["unavailable"]:
            print("%-12s unavailable: %s" % (s, res[s]["unavailable"]))
        for p in res[s]["points"]:
            print("%-12s %8g %6.2f %10.0f %9s %9s %10s %8.1fms %8.1fms %s" % (
                s, p["rate"], p["cores"], p["cpu_us_per_step"],
                "%.0f" % p["syscalls_per_step"] if "syscalls_per_step" in p else "-",
                "%.1f" % p["ctxsw_per_step"] if "ctxsw_per_step" in p else "-",
                "%.0f" % p["lo_bytes_per_step"] if "lo_bytes_per_step" in p else "-",
                p["token_excess_us"]["p99"] / 1000, p["tool_excess_us"]["p99"] / 1000,
                "ok" if p["slo_ok"] else "broken"))
    print("(cores: the whole stack's CPU, %s; checked against the /proc/PID/stat sum. per step: over rate x "
          "window. lo B: bytes over the loopback device, host-wide)" % out["cpu_source"])
    print()
    print("at the model's rate R = %.0f steps/s (%s):" % (model_rate, model_basis))
    parts = []
    for s in stacks:
        r = res[s]
        if not r.get("knee"):
            print("  %-12s %s" % (s, "unavailable: " + r["unavailable"] if r["unavailable"] else "no rate met the SLO"))
            continue
        k, m = r["knee"], r["at_model_rate"]
        if m["host_bound"] and m["cores"] > ncpu:
            bound = "host-bound: needs %.1fx the %d cores here" % (m["ratio"], ncpu)
        elif m["host_bound"]:
            bound = "host-bound: the SLO broke above %g steps/s, below R" % k["rate"]
        else:
            bound = "model-bound: %.1fx headroom on %d cores" % (m["ratio"], ncpu)
        if m["extrapolated"]:
            bound += " (CPU/step extrapolated from %g steps/s)" % m["from_rate"]
        print("  %-12s %6.2f cores at R (CPU/step at %g steps/s); knee >= %g steps/s%s; %.0f steps/s and %.0f agents per core at SLO; %s"
              % (s, m["cores"], m["from_rate"], k["rate"], " (end of sweep)" if k["beyond_sweep"] else "",
                 k["steps_per_core"], k["agents_per_core"], bound))
        parts.append((s, m["cores"]))
    if parts:
        conv = dict(parts).get("conventional")
        host_bound = [s for s in stacks if res[s].get("at_model_rate", {}).get("host_bound")]
        v = "at %.0f model steps/s " % model_rate + ", ".join("%s needs %.2f cores" % (s, c) for s, c in parts)
        if host_bound:
            v += "; the host, not the model, is the bottleneck for %s" % ", ".join(host_bound)
        else:
            v += "; the model is the bottleneck for every stack"
        out["verdict"] = v
        print()
        print("verdict: " + v + ".")
        if conv:
            for s, c in parts:
                if s != "conventional" and c > 0:
                    out.setdefault("ratios_vs_conventional", {})[s] = c / conv
    goals = goal_lines(res, stacks)
    if goals:
        out["goals"] = goals
        print()
        print("goals (issue 14; ratios from this run):")
        for g in goals:
            print("  %-4s %s" % ("met" if g["met"] else ("miss" if g["met"] is not None else "n/a"), g["text"]))
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
        print("json: %s" % a.json)
    if a.svg:
        svg(a.svg, res, [s for s in stacks if res[s]["points"]], b.tmp, model_rate)
        print("chart: %s" % a.svg)
    shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("run.py: interrupted; every stack's processes were stopped", file=sys.stderr)
        sys.exit(130)
