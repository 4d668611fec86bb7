#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helpers for bench/peers/run.sh and bench/peers/ucx.sh: free ports, CPU
accounting around one client run (and, for ucx.sh, around a server that exits
by itself), parsing of sockperf / wrk / ucx_perftest / wirepath output, and
the reports.

CPU is counted in nanoseconds of on-CPU time, never in clock ticks:
  - the client is our child; wait4() returns its rusage, whose utime+stime
    sum equals the kernel's sum_exec_runtime over all its threads
    (cputime_adjust scales the tick split to the precise total);
  - a server is a long-running process tree; we sum the first field of
    /proc/PID/task/TID/schedstat (sum_exec_runtime, ns) over every thread of
    the given PIDs and of their descendants (the nginx worker), before the
    client starts and after it has exited and the server has gone idle.
    Where schedstat is missing (no CONFIG_SCHED_INFO) we fall back to
    utime+stime from /proc/PID/task/TID/stat in clock ticks.
Only the Python standard library is used.

One file of about 1,200 lines on purpose: it is a table of subcommands
(`peers.py freeport|cpu|report...`) that run.sh and ucx.sh call, each a few
screens long, sharing the CPU accounting and the parsers; split, each piece
would import all the others. The real-stack bench (issue 14) replaces it.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def die(msg):
	print("peers: " + msg, file=sys.stderr)
	sys.exit(1)


# ---------------------------------------------------------------- ports ----

def cmd_freeport(args):
	"""Print N distinct free TCP ports on 127.0.0.1 (bound to port 0 at once,
	so the N answers differ; the small window before the server binds is
	the usual caveat of this trick)."""
	n = int(args[0]) if args else 1
	socks = []
	for _ in range(n):
		s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		s.bind(("127.0.0.1", 0))
		socks.append(s)
	print(" ".join(str(s.getsockname()[1]) for s in socks))
	for s in socks:
		s.close()


# ------------------------------------------------------------------ CPU ----

def _children_map():
	kids = {}
	for d in os.listdir("/proc"):
		if not d.isdigit():
			continue
		try:
			with open("/proc/%s/stat" % d) as f:
				st = f.read()
		except OSError:
			continue
		# comm may hold spaces and parentheses: split after the last ')'
		ppid = int(st[st.rindex(")") + 2:].split()[1])
		kids.setdefault(ppid, []).append(int(d))
	return kids


def process_tree(pids):
	"""The given PIDs and all their live descendants."""
	kids = _children_map()
	out, todo = [], list(pids)
	while todo:
		p = todo.pop()
		if p in out:
			continue
		out.append(p)
		todo.extend(kids.get(p, []))
	return out


def _task_cpu_ns(pid, tid):
	base = "/proc/%d/task/%s/" % (pid, tid)
	try:
		with open(base + "schedstat") as f:
			ns = int(f.read().split()[0])
		if ns > 0:
			return ns, "schedstat"
	except (OSError, ValueError, IndexError):
		pass
	try:
		with open(base + "stat") as f:
			st = f.read()
	except OSError:
		return 0, "gone"
	fields = st[st.rindex(")") + 2:].split()
	ticks = int(fields[11]) + int(fields[12])  # utime, stime
	return ticks * 1000000000 // CLK_TCK, "stat"


def tree_cpu(pids):
	"""{ "pid/tid": ns } over every thread of the process trees, plus the
	sources used."""
	per, src = {}, set()
	for pid in process_tree(pids):
		try:
			tids = os.listdir("/proc/%d/task" % pid)
		except OSError:
			continue
		for tid in tids:
			ns, how = _task_cpu_ns(pid, tid)
			if how != "gone":
				per["%d/%s" % (pid, tid)] = ns
				src.add(how)
	return per, src


def host_busy_ns():
	"""Busy time of the whole host from /proc/stat (user+nice+system+irq+
	softirq, all CPUs; guest time is already inside user), in clock ticks
	turned into ns. A cross-check: it includes whatever else runs here."""
	with open("/proc/stat") as f:
		v = [int(x) for x in f.readline().split()[1:]]
	return (v[0] + v[1] + v[2] + v[5] + v[6]) * 1000000000 // CLK_TCK


def cpu_delta(before, after):
	"""Sum of per-thread increases; a thread new in `after` counts from 0.
	A thread that exited in between is lost (servers here keep theirs)."""
	return sum(ns - before.get(k, 0) for k, ns in after.items())


# -------------------------------------------------------------- parsers ----

def _num(pattern, text, conv=float, default=None):
	m = re.search(pattern, text, re.M)
	return conv(m.group(1)) if m else default


def parse_sockperf_pp(text):
	"""ping-pong run with --full-rtt: latencies are round trips in us."""
	valid = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); "
			  r"ReceivedMessages=(\d+)", text)
	total = re.search(r"\[Total Run\] RunTime=([\d.]+) sec;.*?SentMessages=(\d+); "
			  r"ReceivedMessages=(\d+)", text)
	if not valid or not total:
		raise ValueError("no [Valid Duration]/[Total Run] line in sockperf output")
	vt, vrecv = float(valid.group(1)), int(valid.group(3))
	# avg-latency / percentiles are round trips because of --full-rtt
	avg = _num(r"avg-(?:latency|rtt)=([\d.]+)", text)
	return {
		"rate": vrecv / vt if vt > 0 else None,
		"rate_unit": "round trips/s",
		"avg_us": avg,
		"p50_us": _num(r"percentile 50\.000 =\s*([\d.]+)", text),
		"p99_us": _num(r"percentile 99\.000 =\s*([\d.]+)", text),
		# every message the client exchanged over its life (warm-up included),
		# the denominator that matches CPU measured over its whole life
		"ops": int(total.group(3)),
	}


def parse_sockperf_tp(text):
	m = re.search(r"Total of (\d+) messages sent in ([\d.]+) sec", text)
	if not m:
		raise ValueError("no 'Total of N messages sent' line in sockperf output")
	sent, secs = int(m.group(1)), float(m.group(2))
	rate = _num(r"Message Rate is (\d+)", text, float, sent / secs if secs else None)
	return {"rate": rate, "rate_unit": "msg/s", "avg_us": None, "p50_us": None,
		"p99_us": None, "ops": sent}


_WRK_UNIT = {"us": 1.0, "ms": 1000.0, "s": 1000000.0}


def _wrk_lat(pct, text):
	m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
	return float(m.group(1)) * _WRK_UNIT[m.group(2)] if m else None


def parse_wrk(text):
	m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
	rps = _num(r"Requests/sec:\s*([\d.]+)", text)
	if not m or rps is None:
		raise ValueError("no 'N requests in' / 'Requests/sec' line in wrk output")
	avg = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s)", text, re.M)
	errs = re.search(r"Socket errors: (.*)$", text, re.M)
	non2xx = _num(r"Non-2xx or 3xx responses: (\d+)", text, int, 0)
	out = {"rate": rps, "rate_unit": "requests/s",
	       "avg_us": float(avg.group(1)) * _WRK_UNIT[avg.group(2)] if avg else None,
	       "p50_us": _wrk_lat(50, text), "p99_us": _wrk_lat(99, text),
	       "ops": int(m.group(1))}
	if errs or non2xx:
		out["errors"] = (errs.group(1) if errs else "") + \
			(" non-2xx=%d" % non2xx if non2xx else "")
	return out


# ucx_perftest 1.13 "Final:" line: iterations, latency 50.0%ile, average (last
# report interval), overall (whole run) in usec, bandwidth average and overall
# in MB/s (MB = 1024*1024 bytes: the tool divides by 1024.0 * 1024.0), message
# rate average and overall. For ping-pong tests (*_lat) the tool divides the
# round-trip time by 2: the latencies are half a round trip.
_UCX_FINAL = re.compile(r"^Final:\s+" + r"\s+".join([r"([\d.]+)"] * 8) + r"\s*$", re.M)


def ucx_transports(text):
	"""Transports UCX chose for the tag protocol, from the UCX_LOG_LEVEL=info
	line 'ep_cfg[0]: tag(posix/memory cma/memory)'."""
	out = []
	for grp in re.findall(r"ep_cfg\[\d+\]: tag\(([^)]*)\)", text):
		for tl in grp.split():
			if tl not in out:
				out.append(tl)
	return out


def parse_ucx(text):
	m = _UCX_FINAL.search(text)
	if not m:
		errs = re.findall(r"UCX\s+ERROR\s+(.*)$", text, re.M)
		raise ValueError("no 'Final:' line in ucx_perftest output" +
				 (": " + errs[-1].strip() if errs else ""))
	v = [float(x) for x in m.groups()]
	return {"iters": int(v[0]), "ucx_p50_us": v[1], "ucx_avg_us": v[3],
		"ucx_mib_per_s": v[5], "ucx_msg_per_s": v[7],
		"transports": ucx_transports(text)}


PARSERS = {"sockperf-pp": parse_sockperf_pp, "sockperf-tp": parse_sockperf_tp,
	   "wrk": parse_wrk, "ucx": parse_ucx, "none": lambda text: {}}


# -------------------------------------------------------------- measure ----

def cmd_measure(argv):
	"""measure --name N --parse KIND --out ROW.json --log LOG [--watch PID,...]
	[--settle S] -- CMD ARGS...

	Runs CMD as our child with stdout+stderr to LOG, snapshots the watched
	server trees before and after, and writes one row with client_cpu_ns,
	server_cpu_ns, the parsed figures and cpu_us_per_op."""
	opts = {"--watch": "", "--settle": "0.3", "--parse": "none"}
	while argv and argv[0] != "--":
		if len(argv) < 2:
			die("measure: option %s needs a value" % argv[0])
		opts[argv[0]] = argv[1]
		argv = argv[2:]
	cmd = argv[1:]
	if not cmd or "--out" not in opts or "--log" not in opts or "--name" not in opts:
		die("measure: usage: measure --name N --out F --log F [--parse K] "
		    "[--watch PIDS] -- CMD...")
	watch = [int(p) for p in opts["--watch"].split(",") if p]
	for p in watch:
		if not os.path.exists("/proc/%d" % p):
			die("measure: server pid %d is not running" % p)

	before, src = tree_cpu(watch)
	host0 = host_busy_ns()
	t0 = time.monotonic()
	with open(opts["--log"], "wb") as log:
		proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
		try:
			_, status, ru = os.wait4(proc.pid, 0)
		except KeyboardInterrupt:
			# Ctrl-C: stop our client by its PID; run.sh's trap stops the servers
			proc.kill()
			os.waitpid(proc.pid, 0)
			print("peers: interrupted", file=sys.stderr)
			sys.exit(130)
		proc.returncode = os.waitstatus_to_exitcode(status)
	wall = time.monotonic() - t0
	# let the server drain what is still queued (throughput mode) and go idle,
	# so its schedstat is settled when we read it
	time.sleep(float(opts["--settle"]))
	after, src2 = tree_cpu(watch)
	host_ns = host_busy_ns() - host0
	server_ns = cpu_delta(before, after)
	client_ns = int(round((ru.ru_utime + ru.ru_stime) * 1e9))

	with open(opts["--log"], errors="replace") as f:
		text = f.read()
	row = {"name": opts["--name"], "cmd": " ".join(cmd), "rc": proc.returncode,
	       "wall_s": round(wall, 3), "client_cpu_ns": client_ns,
	       "server_cpu_ns": server_ns, "host_busy_ns": host_ns,
	       # host busy time not charged to the client or the server: other
	       # load on the host (and softirq work done by ksoftirqd), in CPUs
	       "other_load_cpus": round(max(0, host_ns - client_ns - server_ns) / 1e9 /
					(wall + float(opts["--settle"])), 2),
	       "server_pids": process_tree(watch) if watch else [],
	       "cpu_source": "client: wait4 rusage (utime+stime); server: " +
			     ("+".join(sorted(src | src2)) if watch else "n/a")}
	if proc.returncode != 0:
		row["error"] = "exit status %d; last output: %s" % (
			proc.returncode, text.strip().splitlines()[-1] if text.strip() else "(none)")
	else:
		try:
			row.update(PARSERS[opts["--parse"]](text))
		except ValueError as e:
			row["error"] = str(e)
	if row.get("ops"):
		row["cpu_us_per_op"] = (client_ns + server_ns) / 1000.0 / row["ops"]
		row["client_cpu_us_per_op"] = client_ns / 1000.0 / row["ops"]
		row["server_cpu_us_per_op"] = server_ns / 1000.0 / row["ops"]
	with open(opts["--out"], "w") as f:
		json.dump(row, f, indent=1)
	if "error" in row:
		print("peers:   %s failed: %s (log kept in the report)" % (row["name"], row["error"]),
		      file=sys.stderr)


# --------------------------------------------------------------- report ----

def _load(path):
	try:
		with open(path) as f:
			return json.load(f)
	except (OSError, ValueError):
		return None


def wirepath_rows(agents, bench_json, ext_row, unavailable):
	"""Rows for one wirepath bench run (tcp and uring)."""
	label = "c%d" % agents
	if unavailable:
		return [{"name": "wirepath %s %s" % (p, label), "unavailable": unavailable}
			for p in ("tcp", "uring")]
	doc = _load(bench_json)
	if not doc or not isinstance(doc.get("results"), list):
		return [{"name": "wirepath %s %s" % (p, label),
			 "unavailable": "bench wrote no usable JSON (%s)" % bench_json}
			for p in ("tcp", "uring")]
	wl = doc.get("workload") if isinstance(doc.get("workload"), dict) else {}
	cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
	fanout = wl.get("fanout", 1) or 1
	rows, total_steps = [], 0.0
	seen = {r.get("path") for r in doc["results"]}
	for r in doc["results"]:
		if r.get("available") is False or r.get("ok") is False:
			rows.append({"name": "wirepath %s %s" % (r.get("path"), label),
				     "unavailable": r.get("reason") or r.get("error") or
				     r.get("detail") or "bench says not available/ok"})
			continue
		rtt = r.get("tool_rtt_us") or {}
		cps = r.get("cpu_us_per_step")
		sps = r.get("steps_per_s")
		row = {"name": "wirepath %s %s" % (r.get("path"), label), "path": r.get("path"),
		       "agents": agents, "rate": sps * fanout if sps is not None else None,
		       "rate_unit": "tool calls/s",
		       "cpu_us_per_op": cps / fanout if cps is not None else None,
		       "syscalls_per_op": (r["syscalls_per_step"] / fanout
					   if r.get("syscalls_per_step") is not None else None),
		       "avg_us": rtt.get("mean", rtt.get("avg")),
		       "p50_us": rtt.get("p50"), "p99_us": rtt.get("p99"),
		       "steps_per_s": sps, "cpu_us_per_step": cps, "fanout": fanout}
		for k in ("mode", "fallback", "error", "unavailable"):
			if k in r:
				row[k] = r[k]
		# RPCs the agents really completed per step: with fan-out 1 and no
		# memory/model/telemetry work this should be 1; more means the step
		# carries other round trips, which the per-step CPU includes
		calls = (r.get("client") or {}).get("calls_ok")
		if calls is not None and r.get("steps"):
			row["rpcs_per_step"] = calls / r["steps"]
			if row["rpcs_per_step"] > fanout * 1.05:
				row["warning"] = "%.1f RPCs per step, not %d: CPU/op covers them all" % (
					row["rpcs_per_step"], fanout)
		# the process also runs during the warm-up: count those steps at
		# the measured rate (an estimate, hence a cross-check only)
		dur = cfg.get("duration_s", r.get("wall_s"))
		warm = cfg.get("warmup_s", 0) or 0
		if sps is not None and dur:
			total_steps += sps * (dur + warm)
		rows.append(row)
	for p in ("tcp", "uring"):
		if p not in seen:
			rows.append({"name": "wirepath %s %s" % (p, label),
				     "unavailable": "path missing from bench results"})
	# cross-check: whole-process CPU of the bench (wait4) over all its steps
	if ext_row:
		for row in rows:
			row["other_load_cpus"] = ext_row.get("other_load_cpus")
	if ext_row and total_steps > 0 and ext_row.get("client_cpu_ns"):
		ext = ext_row["client_cpu_ns"] / 1000.0 / (total_steps * fanout)
		for row in rows:
			row["process_cpu_us_per_op_all_paths"] = ext
	return rows


NOISY_CPUS = 0.15


def fmt(v, w, prec=1):
	if v is None:
		return "-".rjust(w)
	if isinstance(v, str):
		return v.rjust(w)
	if abs(v) >= 100000:
		return ("%.0f" % v).rjust(w)
	return ("%.*f" % (prec, v)).rjust(w)


def cmd_report(argv):
	"""report --dir TMPDIR --json OUT --duration D [--wp-unavailable REASON]"""
	opts = {"--wp-unavailable": "", "--pin": ""}
	while argv:
		opts[argv[0]] = argv[1]
		argv = argv[2:]
	d = opts["--dir"]
	rows = []
	for key in ("sockperf_pp", "sockperf_tp", "wrk_c1", "wrk_c8"):
		r = _load(os.path.join(d, key + ".json"))
		if r is None:
			why = "did not run"
			try:
				with open(os.path.join(d, key + ".unavailable")) as f:
					why = f.read().strip() or why
			except OSError:
				pass
			r = {"name": key, "unavailable": why}
		r["id"] = key
		rows.append(r)
	for agents in (1, 8):
		ext = _load(os.path.join(d, "wp%d_ext.json" % agents))
		reason = opts["--wp-unavailable"]
		if not reason and ext and ext.get("rc"):
			reason = ext.get("error", "bench failed")
		for r in wirepath_rows(agents, os.path.join(d, "wp%d.json" % agents), ext, reason):
			r["id"] = r["name"].replace(" ", "_")
			rows.append(r)

	by = {r["id"]: r for r in rows}

	def ratio(wp, ng):
		a, b = by.get(wp, {}), by.get(ng, {})
		x, y = a.get("cpu_us_per_op"), b.get("cpu_us_per_op")
		if x is None or not y or a.get("error") or b.get("error"):
			return None
		return x / y

	ratios = {"c1": ratio("wirepath_uring_c1", "wrk_c1"),
		  "c8": ratio("wirepath_uring_c8", "wrk_c8")}

	labels = {"sockperf_pp": "sockperf ping-pong 64 B", "sockperf_tp": "sockperf throughput 64 B",
		  "wrk_c1": "nginx+wrk 4 KiB c1", "wrk_c8": "nginx+wrk 4 KiB c8"}
	print()
	if opts["--pin"]:
		print("every server and client ran pinned to CPU %s (--pin)" % opts["--pin"])
	hdr = "%-28s %12s %-14s %9s %9s %9s %8s" % ("peer", "CPU us/op", "(cli+srv)",
						    "rate", "p50 us", "p99 us", "")
	print(hdr)
	print("%-28s %12s %-14s %9s %9s %9s" % ("", "both sides", "", "ops/s", "", ""))
	print("-" * len(hdr))
	for r in rows:
		name = labels.get(r["id"], r["name"])
		if r.get("unavailable"):
			print("%-28s   unavailable: %s" % (name, r["unavailable"]))
			continue
		if r.get("error") and r.get("cpu_us_per_op") is None:
			print("%-28s   failed: %s" % (name, r["error"]))
			continue
		if "client_cpu_us_per_op" in r:
			split = "(%.1f+%.1f)" % (r["client_cpu_us_per_op"], r["server_cpu_us_per_op"])
		else:
			split = "(bench)"
		note = "  ! " + r["error"] if r.get("error") else ""
		if r.get("warning"):
			note += "  ! " + r["warning"]
		if (r.get("other_load_cpus") or 0) >= NOISY_CPUS:
			note += "  ~ other load %.2f CPU" % r["other_load_cpus"]
		if r.get("fallback"):
			note += "  ! fallback: %s" % r["fallback"]
		print("%-28s %12s %-14s %9s %9s %9s%s" % (
			name, fmt(r.get("cpu_us_per_op"), 12, 2), split, fmt(r.get("rate"), 9, 0),
			fmt(r.get("p50_us"), 9), fmt(r.get("p99_us"), 9), note))
	print()
	print("ops: sockperf ping-pong = one 64 B round trip; throughput = one 64 B message "
	      "(one way);")
	print("     nginx = one GET of a 4 KiB file on a keep-alive connection; "
	      "wirepath = one tool call (1 KiB -> 4 KiB).")
	print("sockperf latencies are full round trips (--full-rtt).")
	for agents in (1, 8):
		x = by.get("wirepath_uring_c%d" % agents, {}).get("process_cpu_us_per_op_all_paths")
		if x is not None:
			print("cross-check: wirepath bench --agents %d, whole process tree (wait4), both "
			      "paths, warm-up included: %.2f CPU us per step" % (agents, x))
	if any((r.get("other_load_cpus") or 0) >= NOISY_CPUS for r in rows):
		print("~ marks a run during which other processes kept at least %.2f CPU busy "
		      "(from /proc/stat):" % NOISY_CPUS)
		print("  its figures are noisy; run again on an idle host." )
	print()
	for k in ("c1", "c8"):
		v = ratios[k]
		print("wirepath uring tool call CPU / nginx keep-alive request CPU (%s) = %s (goal <= 0.5)%s"
		      % (k, "%.2f" % v if v is not None else "n/a",
			 "" if v is None else ("  met" if v <= 0.5 else "  NOT met")))

	doc = {"tool": "bench/peers/run.sh", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
	       "duration_s": float(opts["--duration"]),
	       "pinned_cpu": int(opts["--pin"]) if opts["--pin"] else None,
	       "host": {"kernel": os.uname().release, "cpus": os.cpu_count(),
			"versions": _load(os.path.join(d, "versions.json")) or {}},
	       "cpu_method": ("client: wait4() rusage utime+stime of the client process (ns "
			      "total, all threads); server: delta of sum_exec_runtime from "
			      "/proc/PID/task/*/schedstat over the server process tree "
			      "(nginx master+worker), read before the client starts and after it "
			      "exits; wirepath: the bench's own cpu_us_per_step (agent+server)"),
	       "rows": rows,
	       "ratio_uring_vs_nginx_cpu": ratios, "goal_ratio_max": 0.5}
	out = opts["--json"]
	os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
	with open(out, "w") as f:
		json.dump(doc, f, indent=1)
		f.write("\n")
	print()
	print("peers: wrote %s" % out)


# ----------------------------------------------------- ucx.sh: ucx_perftest ----
#
# ucx_perftest's server accepts exactly one connection, runs the test the
# client describes and exits. So it cannot be probed by connecting (the probe
# would be taken for the client) and its CPU cannot be read from /proc after
# the client is done (it is gone by then). ucx.sh therefore starts it under
# `peers.py child`, which waits for it with wait4() and writes its rusage,
# and waits for its port with `peers.py listening`, which reads /proc/net/tcp.

def _opts(argv, known, usage):
	opts = dict(known)
	while argv and argv[0] != "--":
		if len(argv) < 2 or argv[0] not in known:
			die("%s (bad or incomplete option '%s')" % (usage, argv[0]))
		opts[argv[0]] = argv[1]
		argv = argv[2:]
	return opts, argv[1:]


def cmd_child(argv):
	"""child --out F --log L -- CMD...

	Runs a server as our child (stdout+stderr to L), forwards TERM/INT/HUP to
	it, and when it exits writes {pid, rc, cpu_ns, user_ns, sys_ns, wall_s}
	from wait4() to F. The child gets SIGKILL if we die first
	(PR_SET_PDEATHSIG), so stopping this wrapper by PID stops the server."""
	import ctypes
	import signal
	opts, cmd = _opts(argv, {"--out": None, "--log": None},
			  "child: usage: child --out F --log L -- CMD...")
	if not cmd or not opts["--out"] or not opts["--log"]:
		die("child: usage: child --out F --log L -- CMD...")
	libc = ctypes.CDLL(None, use_errno=True)
	ppid = os.getpid()

	def pdeath():
		libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
		if os.getppid() != ppid:        # we died before prctl took effect
			os._exit(1)
	t0 = time.monotonic()
	with open(opts["--log"], "wb") as log:
		proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pdeath)

	def fwd(sig, _frame):
		try:
			os.kill(proc.pid, sig)
		except ProcessLookupError:
			pass
	for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
		signal.signal(sig, fwd)
	_, status, ru = os.wait4(proc.pid, 0)   # retried after a handler (PEP 475)
	rc = os.waitstatus_to_exitcode(status)
	row = {"pid": proc.pid, "cmd": " ".join(cmd), "rc": rc,
	       "wall_s": round(time.monotonic() - t0, 3),
	       "cpu_ns": int(round((ru.ru_utime + ru.ru_stime) * 1e9)),
	       "user_ns": int(round(ru.ru_utime * 1e9)), "sys_ns": int(round(ru.ru_stime * 1e9)),
	       "cpu_source": "wait4 rusage (utime+stime)"}
	with open(opts["--out"], "w") as f:
		json.dump(row, f, indent=1)


def _listening(port):
	for name in ("/proc/net/tcp", "/proc/net/tcp6"):
		try:
			with open(name) as f:
				lines = f.read().splitlines()[1:]
		except OSError:
			continue
		for line in lines:
			fld = line.split()
			if len(fld) > 3 and fld[3] == "0A" and int(fld[1].rsplit(":", 1)[1], 16) == port:
				return True
	return False


def _alive(pid):
	try:
		with open("/proc/%d/stat" % pid) as f:
			st = f.read()
	except OSError:
		return False
	return st[st.rindex(")") + 2] != "Z"


def cmd_listening(argv):
	"""listening PORT PID [TIMEOUT_S]: exit 0 once a socket listens on TCP
	PORT (any address, from /proc/net/tcp*, without connecting), 1 when PID
	has exited or after TIMEOUT_S (default 5)."""
	if len(argv) < 2:
		die("listening: usage: listening PORT PID [TIMEOUT_S]")
	port, pid = int(argv[0]), int(argv[1])
	end = time.monotonic() + (float(argv[2]) if len(argv) > 2 else 5.0)
	while time.monotonic() < end:
		if _listening(port):
			sys.exit(0)
		if not _alive(pid):
			sys.exit(1)
		time.sleep(0.02)
	sys.exit(1)


def _ucx_iter_s(row, test, size):
	"""Seconds per iteration from a parsed ucx_perftest row: a ping-pong
	iteration is one round trip (2 x the half-RTT the tool prints), a
	bandwidth iteration is one message of SIZE bytes."""
	if not row or row.get("error"):
		return None
	if test.endswith("_lat"):
		lat = row.get("ucx_avg_us")
		return 2 * lat * 1e-6 if lat else None
	bw = row.get("ucx_mib_per_s")
	return size / (bw * 1048576.0) if bw else None


def cmd_ucx_iters(argv):
	"""ucx-iters --test T --size S --duration D --cal CAL_CLIENT.json

	Iterations that make a run of about D seconds, from the calibration run's
	own figures; a fixed default when the calibration failed. The speed of
	this VM can change between two runs (see the README), so the count is
	kept within bounds that give about D/3 .. 3D seconds at the speeds seen
	here (tag_lat RTT 0.16-1.3 us, tag_bw 4 MiB 1.6-12 GB/s)."""
	opts, _ = _opts(argv, {"--test": "tag_lat", "--size": "8", "--duration": "2",
			       "--cal": ""}, "ucx-iters: usage: ucx-iters --test T --size S "
			"--duration D --cal F")
	test, size, dur = opts["--test"], int(opts["--size"]), float(opts["--duration"])
	lat = test.endswith("_lat")
	per = _ucx_iter_s(_load(opts["--cal"]), test, size)
	if per is None:
		n = int(dur * (1000000 if lat else 1000))
	else:
		n = int(dur / per)
	lo, hi = (dur * 1000000, dur * 8000000) if lat else (dur * 300, dur * 4000)
	print(int(max(lo, min(hi, n))))


def cmd_ucx_row(argv):
	"""ucx-row --dir D --key K --name N --test T --tls TLS --size S --warmup W

	Joins the client row (peers.py measure: wait4 rusage, parsed Final line)
	and the server's rusage (peers.py child) of run K into D/K.json. CPU is
	each process's whole life (start, UCX init, connection, warm-up: about
	25-30 ms per process here) over every iteration it ran, warm-up
	included."""
	opts, _ = _opts(argv, {"--dir": None, "--key": None, "--name": "", "--test": "",
			       "--tls": "", "--size": "0", "--warmup": "0"},
			"ucx-row: usage: ucx-row --dir D --key K ...")
	d, key = opts["--dir"], opts["--key"]
	test, size, warm = opts["--test"], int(opts["--size"]), int(opts["--warmup"])
	lat = test.endswith("_lat")
	cli = _load(os.path.join(d, key + ".cli.json"))
	srv = _load(os.path.join(d, key + ".srv.json"))
	ccli = _load(os.path.join(d, key + "_cal.cli.json"))
	csrv = _load(os.path.join(d, key + "_cal.srv.json"))
	row = {"id": key, "name": opts["--name"], "test": test, "size": size,
	       "env": {"UCX_TLS": opts["--tls"], "UCX_LOG_LEVEL": "info"}, "warmup": warm}

	def tail(path, n=3000):
		try:
			with open(path, errors="replace") as f:
				return f.read()[-n:]
		except OSError:
			return ""
	row["client_output"] = tail(os.path.join(d, key + ".cli.log"))
	row["server_output"] = tail(os.path.join(d, key + ".srv.log"))
	if cli is None:
		why = "did not run"
		try:
			with open(os.path.join(d, key + ".unavailable")) as f:
				why = f.read().strip() or why
		except OSError:
			pass
		row["unavailable"] = why
	else:
		for k in ("cmd", "rc", "wall_s", "error", "iters", "ucx_p50_us", "ucx_avg_us",
			  "ucx_mib_per_s", "ucx_msg_per_s", "transports", "client_cpu_ns",
			  "host_busy_ns"):
			if k in cli:
				row[k] = cli[k]
	if srv is not None:
		row["server_cmd"] = srv.get("cmd")
		row["server_rc"] = srv.get("rc")
		row["server_cpu_ns"] = srv.get("cpu_ns")
		row["server_user_ns"], row["server_sys_ns"] = srv.get("user_ns"), srv.get("sys_ns")
		row["server_transports"] = ucx_transports(row["server_output"])
		if srv.get("rc") and not row.get("error"):
			row["error"] = "server exit status %s" % srv.get("rc")
	elif cli is not None and not row.get("error"):
		row["error"] = "no server rusage (server did not exit by itself)"
	if row.get("unavailable") or row.get("error") or not row.get("iters"):
		with open(os.path.join(d, key + ".json"), "w") as f:
			json.dump(row, f, indent=1)
		return

	n = row["iters"]
	if lat:
		# the tool prints half a round trip; one op = one round trip
		row["one_way_p50_us"], row["one_way_avg_us"] = row["ucx_p50_us"], row["ucx_avg_us"]
		row["rtt_p50_us"], row["rtt_avg_us"] = 2 * row["ucx_p50_us"], 2 * row["ucx_avg_us"]
		row["rate"], row["rate_unit"] = 1e6 / row["rtt_avg_us"], "round trips/s"
	else:
		row["gb_per_s"] = row["ucx_mib_per_s"] * 1048576.0 / 1e9
		row["rate"], row["rate_unit"] = row["gb_per_s"] * 1e9 / size, "messages/s"
	cpu = (row.get("client_cpu_ns") or 0) + (row.get("server_cpu_ns") or 0)
	ops = n + warm
	row["ops"] = ops
	row["cpu_us_per_op"] = cpu / 1000.0 / ops
	row["client_cpu_us_per_op"] = row["client_cpu_ns"] / 1000.0 / ops
	row["server_cpu_us_per_op"] = row["server_cpu_ns"] / 1000.0 / ops
	if not lat:
		gb = ops * size / 1e9
		row["bytes"] = ops * size
		row["cpu_s_per_gb"] = cpu / 1e9 / gb
		row["client_cpu_s_per_gb"] = row["client_cpu_ns"] / 1e9 / gb
		row["server_cpu_s_per_gb"] = row["server_cpu_ns"] / 1e9 / gb
	# other load on the host while the client ran
	if row.get("host_busy_ns") is not None and row.get("wall_s"):
		row["other_load_cpus"] = round(max(0, row["host_busy_ns"] - cpu) / 1e9 /
					       row["wall_s"], 2)
	# CPUs kept busy while the client lived (its start-up and the server's
	# accept included): 2.0 = both sides spin all the time
	if row.get("wall_s"):
		row["busy_cpus"] = round(cpu / 1e9 / row["wall_s"], 2)
	# the calibration run that sized this one (its speed may differ)
	if ccli and not ccli.get("error") and ccli.get("iters"):
		row["calibration"] = {"iters": ccli["iters"], "ucx_avg_us": ccli.get("ucx_avg_us"),
				      "ucx_mib_per_s": ccli.get("ucx_mib_per_s"),
				      "client_cpu_ns": ccli.get("client_cpu_ns"),
				      "server_cpu_ns": (csrv or {}).get("cpu_ns")}
	with open(os.path.join(d, key + ".json"), "w") as f:
		json.dump(row, f, indent=1)


# wirepath side of ucx.sh: the JSON of `wirepath bench`, read defensively
# (the shm path and the pingpong and kv workloads are new; any field may be
# missing, and then the row says so instead of failing)

def _numv(v):
	"""v if it is a number (not a bool), else None."""
	return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


_WP_RTT_KEYS = ("rtt_us", "pingpong_rtt_us", "call_rtt_us", "tool_rtt_us", "latency_us")


def _wp_doc(bench_json, ext_row, unavailable):
	"""(doc, None) or (None, reason)."""
	if unavailable:
		return None, unavailable
	doc = _load(bench_json)
	if isinstance(doc, dict):
		return doc, None
	why = "bench wrote no usable JSON"
	if ext_row and ext_row.get("error"):
		why = "bench failed: " + ext_row["error"]
	elif ext_row is None:
		why = "bench did not run"
	return None, why


def _wp_result(doc, path):
	for r in doc.get("results") or []:
		if isinstance(r, dict) and r.get("path") == path:
			return r
	return None


def _wp_reason(r):
	return r.get("reason") or r.get("error") or r.get("detail") or "bench says not available/ok"


def wp_pingpong(bench_json, ext_row, unavailable):
	doc, why = _wp_doc(bench_json, ext_row, unavailable)
	row = {"id": "wirepath_shm_pingpong", "name": "wirepath shm pingpong, --busy-poll"}
	if doc is None:
		row["unavailable"] = why
		return row
	r = _wp_result(doc, "shm")
	if r is None:
		row["unavailable"] = "no 'shm' row in the bench's results[]"
		return row
	if r.get("available") is False or r.get("ok") is False:
		row["unavailable"] = _wp_reason(r)
		return row
	lat_key = next((k for k in _WP_RTT_KEYS if isinstance(r.get(k), dict)), None)
	if lat_key is None:
		row["unavailable"] = "shm result has no latency field (looked for %s)" % ", ".join(_WP_RTT_KEYS)
		return row
	lat = r[lat_key]
	row["latency_field"] = lat_key
	row["rtt_p50_us"] = _numv(lat.get("p50"))
	row["rtt_avg_us"] = _numv(lat.get("mean", lat.get("avg")))
	row["rtt_p99_us"] = _numv(lat.get("p99"))
	if row["rtt_p50_us"] is None and row["rtt_avg_us"] is None:
		row["unavailable"] = "%s has neither p50 nor mean/avg" % lat_key
		return row
	# one op = one round trip (one call); a step may hold several
	steps = _numv(r.get("steps"))
	client = r.get("client") if isinstance(r.get("client"), dict) else {}
	calls = _numv(client.get("calls_ok"))
	per_step = _numv(r.get("calls_per_step", r.get("tool_calls_per_step")))
	if per_step is None and calls is not None and steps:
		per_step = calls / steps
	if _numv(r.get("cpu_us_per_op")) is not None:
		row["cpu_us_per_op"] = r["cpu_us_per_op"]
	elif _numv(r.get("cpu_us_per_step")) is not None:
		row["cpu_us_per_op"] = r["cpu_us_per_step"] / (per_step or 1)
		if per_step is None:
			row["warning"] = "calls per step unknown: CPU/op assumes one call per step"
	by = r.get("cpu_us_per_step_by_side")
	if isinstance(by, dict) and per_step and _numv(by.get("client")) is not None and \
	   _numv(by.get("server")) is not None:
		row["client_cpu_us_per_op"] = by["client"] / per_step
		row["server_cpu_us_per_op"] = by["server"] / per_step
	sps = _numv(r.get("steps_per_s"))
	if sps is not None:
		row["rate"], row["rate_unit"] = sps * (per_step or 1), "round trips/s"
		# elapsed time per round trip, the agent's own work between calls
		# included: what ucx_perftest's average (elapsed / iterations) is
		if row["rate"]:
			row["rtt_from_rate_us"] = 1e6 / row["rate"]
	row["calls_per_step"] = per_step
	cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
	row["busy_poll"] = cfg.get("busy_poll")
	wl = doc.get("workload") if isinstance(doc.get("workload"), dict) else {}
	row["msg_bytes"] = wl.get("msg_bytes", wl.get("tool_req_bytes"))
	for k in ("mode", "fallback", "explain", "syscalls_per_step", "ctx_switches_per_step"):
		if k in r:
			row[k] = r[k]
	if ext_row:
		row["other_load_cpus"] = ext_row.get("other_load_cpus")
		row["process_cpu_ns"] = ext_row.get("client_cpu_ns")
	return row


def _kv_rows(doc):
	"""Every dict under results[] that carries a size and a GB/s or CPU s/GB
	figure, with the path inherited from an enclosing dict when absent."""
	out = []

	def walk(x, path):
		if isinstance(x, dict):
			p = x.get("path", path)
			if "size" in x and ("gb_per_s" in x or "cpu_s_per_gb" in x):
				out.append(dict(x, path=p))
				return
			for v in x.values():
				walk(v, p)
		elif isinstance(x, list):
			for v in x:
				walk(v, path)
	walk(doc.get("results"), None)
	return out


def wp_kv(bench_json, ext_row, unavailable):
	"""{'rows': [...], 'unavailable': {path: reason}}"""
	doc, why = _wp_doc(bench_json, ext_row, unavailable)
	if doc is None:
		return {"rows": [], "unavailable": {"shm": why, "tcp": why}}
	rows, unav = [], {}
	for r in _kv_rows(doc):
		row = {k: r.get(k) for k in ("path", "size", "gb_per_s", "cpu_s_per_gb",
					     "copied_bytes_per_byte", "mode", "fallback") if k in r}
		try:
			row["size"] = int(row["size"])
		except (TypeError, ValueError):
			pass
		for k in ("gb_per_s", "cpu_s_per_gb", "copied_bytes_per_byte"):
			if k in row and not isinstance(row[k], (int, float)):
				row[k] = None
		rows.append(row)
	for p in ("shm", "tcp"):
		r = _wp_result(doc, p)
		if r is not None and (r.get("available") is False or r.get("ok") is False):
			unav[p] = _wp_reason(r)
		elif not any(x.get("path") == p for x in rows):
			unav[p] = "no kv rows (size + gb_per_s) for path %s in results[]" % p
	rows.sort(key=lambda x: (x["size"] if isinstance(x.get("size"), int) else 0,
				 str(x.get("path"))))
	return {"rows": rows, "unavailable": unav}


def _size_label(size):
	if not isinstance(size, int) or size <= 0:
		return str(size)
	for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
		if size >= (1 << shift) and size % (1 << shift) == 0:
			return "%d %s" % (size >> shift, unit)
	return "%d B" % size


def _kv_at(kv, path, size=4194304):
	for r in kv["rows"]:
		if r.get("path") == path and r.get("size") == size:
			return r
	return None


def _ratio(a, b):
	if a is None or not b:
		return None
	return a / b


def _goal(v, goal, le):
	if v is None:
		return "n/a"
	ok = v <= goal if le else v >= goal
	return "%.2f  %s" % (v, "met" if ok else "NOT met")


def cmd_ucx_report(argv):
	"""ucx-report --dir D --json OUT --duration S [--pin A,B]
	[--wp-unavailable REASON]"""
	opts, _ = _opts(argv, {"--dir": None, "--json": None, "--duration": "2", "--pin": "",
			       "--wp-unavailable": ""}, "ucx-report: usage: ucx-report --dir D --json F")
	d = opts["--dir"]
	ucx = {}
	for key in ("ucx_lat_8", "ucx_lat_64", "ucx_bw_posix", "ucx_bw_cma"):
		ucx[key] = _load(os.path.join(d, key + ".json")) or \
			{"id": key, "unavailable": "did not run"}
	for key in ("ucx_lat_8_after", "ucx_lat_64_after", "ucx_bw_posix_after"):
		after = _load(os.path.join(d, key + ".json"))
		if after is not None:
			ucx[key] = after
	wpu = opts["--wp-unavailable"]
	pp = wp_pingpong(os.path.join(d, "wp_lat.json"), _load(os.path.join(d, "wp_lat_ext.json")), wpu)
	kv = wp_kv(os.path.join(d, "wp_kv.json"), _load(os.path.join(d, "wp_kv_ext.json")), wpu)

	def bad(r):
		return r.get("unavailable") or (r.get("error") if r.get("cpu_us_per_op") is None else None)

	print()
	print("UCX %s (ucx_perftest) and wirepath shm, side by side, over shared memory on this host; %s"
	      % ((_load(os.path.join(d, "versions.json")) or {}).get("ucx", "?"),
		 "server on CPU %s, client on CPU %s (--pin)" % tuple(opts["--pin"].split(","))
		 if opts["--pin"] else "unpinned"))
	print()
	hdr = "%-36s %9s %9s %9s %11s %-15s %5s  %s" % (
		"latency: ping-pong, both sides spin", "RTT p50", "RTT avg", "one-way",
		"CPU us/op", "(cli+srv)", "CPUs", "transports (UCX_TLS)")
	print(hdr)
	print("%-36s %9s %9s %9s %11s %-15s %5s" % ("", "us", "us", "avg us", "both sides", "", "busy"))
	print("-" * len(hdr))
	def lat_row(key, label):
		r = ucx[key]
		if bad(r):
			print("%-36s   %s: %s" % (label, "unavailable" if r.get("unavailable") else "failed", bad(r)))
			return
		split = "(%.2f+%.2f)" % (r["client_cpu_us_per_op"], r["server_cpu_us_per_op"])
		note = "  ~ other load %.2f CPU" % r["other_load_cpus"] \
			if (r.get("other_load_cpus") or 0) >= NOISY_CPUS else ""
		print("%-36s %9s %9s %9s %11s %-15s %5s  %s (%s)%s" % (
			label, fmt(r.get("rtt_p50_us"), 9, 3), fmt(r.get("rtt_avg_us"), 9, 3),
			fmt(r.get("one_way_avg_us"), 9, 3), fmt(r.get("cpu_us_per_op"), 11, 3), split,
			fmt(r.get("busy_cpus"), 5, 2), " ".join(r.get("transports") or ["?"]),
			r["env"]["UCX_TLS"], note))
	lat_row("ucx_lat_8", "ucx tag_lat 8 B")
	lat_row("ucx_lat_64", "ucx tag_lat 64 B")
	label = "wirepath shm pingpong%s" % (
		" %d B" % pp["msg_bytes"] if isinstance(pp.get("msg_bytes"), int) else "")
	if pp.get("unavailable"):
		print("%-36s   unavailable (below)" % label)
	else:
		split = "(%.2f+%.2f)" % (pp["client_cpu_us_per_op"], pp["server_cpu_us_per_op"]) \
			if "client_cpu_us_per_op" in pp else "(bench)"
		note = ("  ! " + pp["warning"]) if pp.get("warning") else ""
		if pp.get("fallback"):
			note += "  ! fallback: %s" % pp["fallback"]
		if pp.get("busy_poll") is False:
			note += "  ! the bench says busy_poll false"
		if (pp.get("other_load_cpus") or 0) >= NOISY_CPUS:
			note += "  ~ other load %.2f CPU" % pp["other_load_cpus"]
		print("%-36s %9s %9s %9s %11s %-15s %5s  %s%s" % (
			label, fmt(pp.get("rtt_p50_us"), 9, 3), fmt(pp.get("rtt_avg_us"), 9, 3),
			fmt(pp["rtt_avg_us"] / 2 if pp.get("rtt_avg_us") else None, 9, 3),
			fmt(pp.get("cpu_us_per_op"), 11, 3), split, "-", "shm (wirepath, --busy-poll)", note))
	for sz in (8, 64):
		if "ucx_lat_%d_after" % sz in ucx:
			lat_row("ucx_lat_%d_after" % sz, "ucx tag_lat %d B, right after" % sz)
	print()
	hdr = "%-36s %9s %11s %-15s %9s %5s  %s" % (
		"bulk: 4 MiB messages, one way", "GB/s", "CPU s/GB", "(cli+srv)", "copied", "CPUs",
		"transports (UCX_TLS)")
	print(hdr)
	print("%-36s %9s %11s %-15s %9s %5s" % ("", "", "both sides", "", "B/B", "busy"))
	print("-" * len(hdr))
	for key, label in (("ucx_bw_posix", "ucx tag_bw posix"), ("ucx_bw_cma", "ucx tag_bw cma (reference)"),
			   ("ucx_bw_posix_after", "ucx tag_bw posix, after the kv bench")):
		r = ucx.get(key)
		if r is None:
			continue
		if bad(r):
			print("%-36s   %s: %s" % (label, "unavailable" if r.get("unavailable") else "failed", bad(r)))
			continue
		split = "(%.3f+%.3f)" % (r["client_cpu_s_per_gb"], r["server_cpu_s_per_gb"])
		note = "  ~ other load %.2f CPU" % r["other_load_cpus"] \
			if (r.get("other_load_cpus") or 0) >= NOISY_CPUS else ""
		print("%-36s %9s %11s %-15s %9s %5s  %s (%s)%s" % (
			label, fmt(r.get("gb_per_s"), 9, 2), fmt(r.get("cpu_s_per_gb"), 11, 3), split, "-",
			fmt(r.get("busy_cpus"), 5, 2), " ".join(r.get("transports") or ["?"]),
			r["env"]["UCX_TLS"], note))
	kv_ext = _load(os.path.join(d, "wp_kv_ext.json")) or {}
	kv_note = "  ~ other load %.2f CPU" % kv_ext["other_load_cpus"] \
		if (kv_ext.get("other_load_cpus") or 0) >= NOISY_CPUS else ""
	for p in ("shm", "tcp"):
		mine = [r for r in kv["rows"] if r.get("path") == p]
		if p in kv["unavailable"] and not mine:
			print("%-36s   unavailable (below)" % ("wirepath %s kv" % p))
			continue
		for r in mine:
			lbl = "wirepath %s kv %s" % (p, _size_label(r.get("size")))
			note = ("  ! fallback: %s" % r["fallback"] if r.get("fallback") else "") + kv_note
			print("%-36s %9s %11s %-15s %9s %5s  %s%s" % (
				lbl, fmt(r.get("gb_per_s"), 9, 2), fmt(r.get("cpu_s_per_gb"), 11, 3), "(bench)",
				fmt(r.get("copied_bytes_per_byte"), 9, 2), "-", p, note))
	ver = _load(os.path.join(d, "versions.json")) or {}
	eps = ver.get("ucx_info_endpoint") or {}
	if eps:
		print()
		print("UCX's protocol choice between two processes (ucx_info -u t -e; B = message size):")
		for k, lines in sorted(eps.items()):
			lanes = []
			for l in lines:
				m = re.match(r"lane\[\d+\]:\s+\d+:(\S+?)\.\d+\s.*\]\s+(.*)$", l)
				if m:
					lanes.append("%s (%s)" % (m.group(1), m.group(2)))
			lanes = ", ".join(lanes)
			tag = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("tag_send:")), "?")
			print("  %-18s tag_send %s; lanes: %s" % (k, tag, lanes))
	# the wirepath side, when missing: one line per distinct reason
	why = []
	for part, reason in (("pingpong", pp.get("unavailable")),
			     ("kv", kv["unavailable"].get("shm")),
			     ("kv tcp", kv["unavailable"].get("tcp"))):
		if reason and reason not in [r for _, r in why]:
			why.append((part, reason))
	if why:
		print()
	for part, reason in why:
		print("wirepath %s: unavailable: %s%s" % (
			"tcp" if part == "kv tcp" else "shm", reason,
			"" if len(why) == 1 else "  [%s]" % part))
	print()
	print("RTT = full round trip. ucx_perftest prints half a round trip for *_lat tests "
	      "(its 'latency');")
	print("  the RTT columns are 2 x that, 'one-way' is the tool's own figure. "
	      "p50 = its 50.0%ile, over the last 2048 iterations only.")
	print("GB = 1e9 bytes (ucx_perftest's MB/s are MiB/s and are converted). CPU = client + server "
	      "processes (wait4 rusage),")
	print("  whole process life (start-up, UCX init, warm-up included) over every iteration "
	      "run, warm-up included;")
	print("  'CPUs busy' = that CPU / the client's wall time (2.00 = both sides spinning a full "
	      "core each).")
	print("  ucx_perftest always busy-polls (no wake-ups): its CPU per op is the price of its latency.")
	if any((r.get("other_load_cpus") or 0) >= NOISY_CPUS for r in ucx.values()):
		print("~ marks a run during which other processes kept at least %.2f CPU busy: "
		      "with 2 CPUs and two spinners, re-run on an idle host." % NOISY_CPUS)

	# ratios: the goals. The latency ratio is taken against the
	# tag_lat run whose size is nearest the pingpong workload's message
	# (64 B in bench/workloads/pingpong.wl; 8 B, ucx_perftest's default,
	# when the bench does not say), and the other size is shown too.
	msg = pp.get("msg_bytes") if isinstance(pp.get("msg_bytes"), (int, float)) else 8
	lat_size = min((8, 64), key=lambda x: abs(x - msg))
	other_size = 64 if lat_size == 8 else 8
	latb, lato = ucx["ucx_lat_%d" % lat_size], ucx["ucx_lat_%d" % other_size]
	use_p50 = pp.get("rtt_p50_us") is not None and latb.get("rtt_p50_us") is not None
	basis = "rtt_p50_us" if use_p50 else "rtt_avg_us"

	def lat_ratio(u, key=None):
		if pp.get("unavailable") or not u or bad(u):
			return None
		return _ratio(pp.get(key or basis), u.get(key or basis))
	r_lat = lat_ratio(latb)
	r_lat_avg = lat_ratio(latb, "rtt_avg_us")
	r_lat_other = lat_ratio(lato)
	# elapsed time per round trip on both sides: wirepath 1 / rate (its
	# agent loop included) against ucx_perftest's average (elapsed / iters)
	r_lat_rate = None
	if not pp.get("unavailable") and not bad(latb) and pp.get("rtt_from_rate_us"):
		r_lat_rate = _ratio(pp["rtt_from_rate_us"], latb.get("rtt_avg_us"))
	lata = ucx.get("ucx_lat_%d_after" % lat_size) or {}
	r_lat_after = lat_ratio(lata)
	# the two tag_lat runs around the bench disagree: the host changed
	# speed during the comparison (see the README: several speeds on this VM)
	unsteady = None
	if lata and not bad(lata) and not bad(latb) and latb.get("rtt_avg_us") and \
	   lata.get("rtt_avg_us"):
		q = lata["rtt_avg_us"] / latb["rtt_avg_us"]
		if q > 1.5 or q < 1 / 1.5:
			unsteady = q
	shm4, tcp4 = _kv_at(kv, "shm"), _kv_at(kv, "tcp")
	posix = ucx["ucx_bw_posix"]
	r_bw = None if bad(posix) or not shm4 else _ratio(shm4.get("gb_per_s"), posix.get("gb_per_s"))
	cma = ucx["ucx_bw_cma"]
	r_bw_cma = None if bad(cma) or not shm4 else _ratio(shm4.get("gb_per_s"), cma.get("gb_per_s"))
	posixb = ucx.get("ucx_bw_posix_after") or {}
	r_bw_after = None if not posixb or bad(posixb) or not shm4 else \
		_ratio(shm4.get("gb_per_s"), posixb.get("gb_per_s"))
	bw_unsteady = None
	if posixb and not bad(posixb) and not bad(posix) and posix.get("gb_per_s") and \
	   posixb.get("gb_per_s"):
		q = posixb["gb_per_s"] / posix["gb_per_s"]
		if q > 1.5 or q < 1 / 1.5:
			bw_unsteady = q
	r_cpu = None if not shm4 or not tcp4 else _ratio(shm4.get("cpu_s_per_gb"), tcp4.get("cpu_s_per_gb"))
	cpu_by_size = {}
	for r in kv["rows"]:
		if r.get("path") == "shm":
			t = _kv_at(kv, "tcp", r.get("size"))
			if t:
				cpu_by_size[str(r.get("size"))] = _ratio(r.get("cpu_s_per_gb"), t.get("cpu_s_per_gb"))
	print()
	print("wirepath shm RTT / ucx tag_lat %2d B RTT (%s)          = %s (goal <= 2)" % (
		lat_size, "p50" if use_p50 else "avg", _goal(r_lat, 2, True)))
	if use_p50:
		print("  (the same on averages: %s)" % ("%.2f" % r_lat_avg if r_lat_avg is not None else "n/a"))
	if r_lat_rate is not None:
		print("  (elapsed time per round trip, wirepath 1/rate over ucx average: %.2f)" % r_lat_rate)
	if r_lat_after is not None:
		print("  (against the tag_lat %d B run right after the bench: %.2f)" % (lat_size, r_lat_after))
	if r_lat_other is not None:
		print("  (against tag_lat %d B: %.2f)" % (other_size, r_lat_other))
	if unsteady is not None:
		print("  ! the tag_lat %d B runs before and after the bench differ by %.1fx: the host's "
		      "round-trip speed changed during the comparison; re-run" % (
			      lat_size, max(unsteady, 1 / unsteady)))
	print("wirepath shm 4 MiB GB/s / ucx tag_bw posix 4 MiB GB/s  = %s (goal >= 1)" % _goal(r_bw, 1, False))
	if r_bw_after is not None:
		print("  (against the tag_bw posix run right after the kv bench: %.2f)" % r_bw_after)
	if bw_unsteady is not None:
		print("  ! the tag_bw posix runs before and after the bench differ by %.1fx: the host's "
		      "speed changed during the comparison; re-run" % max(bw_unsteady, 1 / bw_unsteady))
	if r_bw_cma is not None:
		print("  (against ucx tag_bw cma, for reference: %.2f)" % r_bw_cma)
	print("wirepath shm CPU s/GB / tcp CPU s/GB, 4 MiB           = %s (goal <= 0.25)" % _goal(r_cpu, 0.25, True))

	doc = {"tool": "bench/peers/ucx.sh", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
	       "duration_s": float(opts["--duration"]),
	       "pinned": {"server_cpu": int(opts["--pin"].split(",")[0]),
			  "client_cpu": int(opts["--pin"].split(",")[1])} if opts["--pin"] else None,
	       "host": {"kernel": os.uname().release, "cpus": os.cpu_count(),
			"versions": _load(os.path.join(d, "versions.json")) or {}},
	       "units": {"latency": "us; rtt_* = full round trip = 2 x ucx_perftest's printed latency; "
			 "one_way_* = the tool's own (half round trip) figure",
			 "gb_per_s": "1e9 bytes/s (ucx_perftest MB/s = MiB/s, converted)",
			 "cpu": "client + server process CPU (wait4 rusage utime+stime), whole process "
				"life (start-up, UCX init, warm-up included) over every iteration run "
				"(warm-up included); busy_cpus = that CPU / the client's wall time"},
	       "ucx": ucx, "wirepath": {"pingpong": pp, "kv": kv},
	       "ratios": {"shm_rtt_over_ucx_tag_lat_rtt": r_lat,
			  "shm_rtt_over_ucx_tag_lat_rtt_basis": "p50" if use_p50 else "avg",
			  "shm_rtt_avg_over_ucx_tag_lat_rtt_avg": r_lat_avg,
			  "shm_rtt_over_ucx_tag_lat_rtt_size": lat_size,
			  "shm_rtt_over_ucx_tag_lat_rtt_after": r_lat_after,
			  "shm_rtt_over_ucx_tag_lat_rtt_other_size": r_lat_other,
			  "shm_rtt_from_rate_over_ucx_tag_lat_rtt_avg": r_lat_rate,
			  "ucx_tag_lat_after_over_before": (lata.get("rtt_avg_us") / latb["rtt_avg_us"]
							    if lata.get("rtt_avg_us") and
							    latb.get("rtt_avg_us") else None),
			  "shm_4mib_gbps_over_ucx_tag_bw_posix": r_bw,
			  "shm_4mib_gbps_over_ucx_tag_bw_posix_after": r_bw_after,
			  "ucx_tag_bw_posix_after_over_before": (posixb.get("gb_per_s") / posix["gb_per_s"]
								 if posixb.get("gb_per_s") and
								 posix.get("gb_per_s") else None),
			  "shm_4mib_gbps_over_ucx_tag_bw_cma": r_bw_cma,
			  "shm_cpu_per_gb_over_tcp_4mib": r_cpu,
			  "shm_cpu_per_gb_over_tcp_by_size": cpu_by_size},
	       "goals": {"shm_rtt_over_ucx_tag_lat_rtt": "<= 2",
			 "shm_4mib_gbps_over_ucx_tag_bw_posix": ">= 1",
			 "shm_cpu_per_gb_over_tcp_4mib": "<= 0.25"}}
	out = opts["--json"]
	os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
	with open(out, "w") as f:
		json.dump(doc, f, indent=1)
		f.write("\n")
	print()
	print("peers: wrote %s" % out)


def main():
	if len(sys.argv) < 2:
		die("usage: peers.py freeport|measure|report|child|listening|ucx-iters|ucx-row|ucx-report ...")
	cmd, args = sys.argv[1], sys.argv[2:]
	if cmd == "freeport":
		cmd_freeport(args)
	elif cmd == "measure":
		cmd_measure(args)
	elif cmd == "report":
		cmd_report(args)
	elif cmd == "child":
		cmd_child(args)
	elif cmd == "listening":
		cmd_listening(args)
	elif cmd == "ucx-iters":
		cmd_ucx_iters(args)
	elif cmd == "ucx-row":
		cmd_ucx_row(args)
	elif cmd == "ucx-report":
		cmd_ucx_report(args)
	else:
		die("unknown command " + cmd)


if __name__ == "__main__":
	main()
