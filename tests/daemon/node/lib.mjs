// SPDX-License-Identifier: MIT
// Shared by the client scripts: argument parsing, one line per check, and the
// exit contract (0 all checks passed, 1 a check failed or the daemon could not
// be reached, 2 usage error). A connection failure is fatal and prints exactly
// one line: every later check would only repeat it.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const common = {
	url: { type: 'string' },
	key: { type: 'string' },
	'timeout-ms': { type: 'string' },
	help: { type: 'boolean', short: 'h' },
};

// Options come from argv first, then, for the four a test sets once for all
// scripts, from the environment, then from defaults.
export function options(script, usage, spec, defaults = {}) {
	let parsed;
	try {
		parsed = parseArgs({ options: { ...common, ...spec }, allowPositionals: false });
	} catch (e) {
		usageExit(script, usage, e.message);
	}
	const v = parsed.values;
	if (v.help) {
		process.stdout.write(`usage: node ${script} ${usage}\n`);
		process.exit(0);
	}
	const envNames = { url: 'WP_BASE_URL', key: 'WP_API_KEY', model: 'WP_MODEL', 'timeout-ms': 'WP_TIMEOUT_MS' };
	const out = {};
	for (const name of Object.keys({ ...common, ...spec })) {
		if (name === 'help')
			continue;
		const env = envNames[name] ? process.env[envNames[name]] : undefined;
		out[name] = v[name] ?? (env !== '' ? env : undefined) ?? defaults[name];
	}
	if (!out.url)
		usageExit(script, usage, '--url (or WP_BASE_URL) is required');
	let u;
	try {
		u = new URL(out.url);
	} catch {
		usageExit(script, usage, `--url: not a URL: ${out.url}`);
	}
	if (u.protocol !== 'http:' && u.protocol !== 'https:')
		usageExit(script, usage, `--url: want http:// or https://, got ${u.protocol}`);
	// The base is the daemon's origin (plus any prefix); routes are appended.
	out.url = out.url.replace(/\/+$/, '');
	out['timeout-ms'] = intOpt(script, usage, 'timeout-ms', out['timeout-ms'] ?? '30000', 1);
	return out;
}

export function intOpt(script, usage, name, value, min) {
	const n = Number(value);
	if (!Number.isInteger(n) || n < min)
		usageExit(script, usage, `--${name}: want an integer >= ${min}, got ${value}`);
	return n;
}

function usageExit(script, usage, msg) {
	process.stderr.write(`${script}: ${msg}\nusage: node ${script} ${usage}\n`);
	process.exit(2);
}

export const now = () => performance.now();
// A string for a one-line detail: JSON-quoted, at most max characters of it.
export const clip = (str, max = 200) => str.length <= max ? JSON.stringify(str) :
	`${JSON.stringify(str.slice(0, max))}... (${str.length} chars)`;
export const ms = (t) => `${t.toFixed(2)} ms`;

let failed = 0;
let passed = 0;

// One line per check: "ok NAME: detail" or "FAIL NAME: detail".
export function check(name, cond, detail = '') {
	if (cond)
		passed++;
	else
		failed++;
	process.stdout.write(`${cond ? 'ok' : 'FAIL'} ${name}${detail ? ': ' + oneLine(detail, 600) : ''}\n`);
	return !!cond;
}

export function info(name, detail) {
	process.stdout.write(`info ${name}: ${oneLine(detail, 2400)}\n`);
}

// What a server sent can hold anything: one line per check, bounded.
function oneLine(s, max) {
	s = String(s).replace(/[\r\n]+/g, ' ');
	return s.length <= max ? s : `${s.slice(0, max)}...`;
}

// Runs fn(); an exception fails the check NAME (a connection failure ends the
// run instead). Returns fn's value, or undefined when it threw.
export async function attempt(name, base, fn) {
	try {
		return await fn();
	} catch (e) {
		if (isConnectError(e))
			return await unreachable(base, e);
		check(name, false, describe(e));
		return undefined;
	}
}

// A run that ends without finish() had its event loop run dry with a promise
// pending (a client library waiting on nothing): node would exit 13 silently.
let finished = false;
process.on('beforeExit', () => {
	if (finished)
		return;
	finished = true;
	exitAfter(`FAIL run: stopped with a promise that never settled, after ${passed} passed, ${failed} failed\n`, 1);
});

// process.exit() drops what a pipe has not taken yet: exit once the last
// line is flushed (stdout writes complete in order).
function exitAfter(line, code) {
	process.stdout.write(line, () => process.exit(code));
	setTimeout(() => process.exit(code), 5000).unref();
}

export function finish(script) {
	finished = true;
	exitAfter(`${failed ? 'FAIL' : 'ok'} ${script}: ${passed} passed, ${failed} failed\n`, failed ? 1 : 0);
	return new Promise(() => {}); // callers stop here until the exit
}

// A bound on the whole run, so that a daemon that accepts and then says
// nothing cannot hang the test. unref(): it never keeps a finished run alive.
export function watchdog(script, totalMs) {
	setTimeout(() => {
		finished = true;
		exitAfter(`FAIL ${script}: no result after ${totalMs} ms, giving up\n`, 1);
	}, totalMs).unref();
}

// Walks the cause chain: undici reports "fetch failed" with the errno below.
function errnoOf(e) {
	for (let c = e, i = 0; c && i < 8; c = c.cause, i++) {
		if (typeof c.code === 'string' && /^E[A-Z_]+$/.test(c.code))
			return c.code;
		if (Array.isArray(c.errors)) // AggregateError from happy eyeballs
			for (const s of c.errors)
				if (typeof s.code === 'string')
					return s.code;
	}
	return undefined;
}

const connectCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
	'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

export function isConnectError(e) {
	const code = errnoOf(e) ?? e?.cause?.code;
	if (code && connectCodes.has(code))
		return true;
	// openai wraps connect failures as APIConnectionError, status undefined.
	return e?.constructor?.name === 'APIConnectionError' && connectCodes.has(errnoOf(e?.cause) ?? '');
}

export function unreachable(base, e) {
	finished = true;
	exitAfter(`FAIL connect: cannot reach ${base}: ${errnoOf(e) ?? describe(e)} (is wirepathd running there?)\n`, 1);
	return new Promise(() => {});
}

export function describe(e) {
	if (!e)
		return String(e);
	const name = e.constructor?.name ?? 'Error';
	const status = e.status !== undefined ? ` status ${e.status}` : '';
	const code = errnoOf(e);
	return `${name}${status}: ${String(e.message ?? e).split('\n')[0]}${code ? ` (${code})` : ''}`;
}

// A fetch that records each read of a response body (arrival time and
// bytes), so a script can see what came over the wire, not only what the
// client library chose to hand up. The recorder holds the body it saw, so it
// is used only where bodies are small (one streamed completion), and a body
// over maxBytes fails the read instead of growing without bound.
export function recordingFetch(log, maxBytes = 16 << 20) {
	return async (url, init) => {
		const res = await fetch(url, init);
		if (!res.body)
			return res;
		const reader = res.body.getReader();
		const rec = { url: String(url), status: res.status, headers: res.headers, reads: [], bytes: [], total: 0, ended: false };
		log.push(rec);
		const body = new ReadableStream({
			async pull(ctl) {
				let r;
				try {
					r = await reader.read();
				} catch (e) {
					ctl.error(e);
					return;
				}
				if (r.done) {
					rec.ended = true;
					ctl.close();
					return;
				}
				rec.total += r.value.byteLength;
				if (rec.total > maxBytes) {
					reader.cancel().catch(() => {});
					ctl.error(new Error(`response body over ${maxBytes} bytes`));
					return;
				}
				rec.reads.push({ t: now(), n: r.value.byteLength });
				rec.bytes.push(Buffer.from(r.value));
				ctl.enqueue(r.value);
			},
			cancel(reason) {
				return reader.cancel(reason);
			},
		});
		return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
	};
}
