#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helpers for bench/peers/run.sh: free ports, CPU accounting around one
client run, parsing of sockperf / wrk / wirepath output, and the report.

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


PARSERS = {"sockperf-pp": parse_sockperf_pp, "sockperf-tp": parse_sockperf_tp,
	   "wrk": parse_wrk, "none": lambda text: {}}


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


def main():
	if len(sys.argv) < 2:
		die("usage: peers.py freeport|measure|report ...")
	cmd, args = sys.argv[1], sys.argv[2:]
	if cmd == "freeport":
		cmd_freeport(args)
	elif cmd == "measure":
		cmd_measure(args)
	elif cmd == "report":
		cmd_report(args)
	else:
		die("unknown command " + cmd)


if __name__ == "__main__":
	main()
