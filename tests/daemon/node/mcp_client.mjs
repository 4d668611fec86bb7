// SPDX-License-Identifier: MIT
// The official MCP TypeScript SDK client over streamable HTTP: initialize,
// tools/list, tools/call, session end (DELETE), and then raw requests that
// check what the SDK does not: the ended session is gone (404), a request
// without a session is refused (400), and, with a key, no key means 401.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { options, check, info, attempt, finish, watchdog, unreachable, isConnectError } from './lib.mjs';

const script = 'mcp_client.mjs';
const usage = '--url BASE [--key KEY] [--path /mcp] [--tools NAME,NAME] [--echo-tool NAME] [--message TEXT] ' +
	'[--protocol-version V] [--timeout-ms MS]';
const o = options(script, usage, {
	path: { type: 'string' },
	tools: { type: 'string' },
	'echo-tool': { type: 'string' },
	message: { type: 'string' },
	'protocol-version': { type: 'string' },
}, { path: '/mcp', 'echo-tool': 'everything_echo', message: 'hello from wirepath' });
const path = o.path.startsWith('/') ? o.path : '/' + o.path;
const endpoint = new URL(o.url + path);
const want = (o.tools ?? o['echo-tool']).split(',').map((s) => s.trim()).filter(Boolean);
const auth = o.key ? { Authorization: `Bearer ${o.key}` } : {};
watchdog(script, o['timeout-ms'] * 6);

// Every HTTP exchange the SDK makes, with the JSON-RPC method it carried.
const wire = [];
const rpcOf = (body) => {
	try {
		const m = JSON.parse(body);
		return Array.isArray(m) ? m.map((x) => x.method ?? 'response').join('+') : (m.method ?? 'response');
	} catch {
		return '-';
	}
};
// --protocol-version V: the SDK always offers its latest revision; the
// initialize request is rewritten to offer V instead, and the SDK then
// speaks whatever the server answers (if the SDK supports it).
const offer = o['protocol-version'];
const rewrite = (body) => {
	try {
		const m = JSON.parse(body);
		if (m.method !== 'initialize')
			return body;
		m.params.protocolVersion = offer;
		return JSON.stringify(m);
	} catch {
		return body;
	}
};
const tracingFetch = async (url, init) => {
	if (offer && typeof init?.body === 'string')
		init = { ...init, body: rewrite(init.body) };
	const res = await fetch(url, { ...init, signal: init?.signal ?? AbortSignal.timeout(o['timeout-ms']) });
	wire.push({ method: init?.method ?? 'GET', rpc: typeof init?.body === 'string' ? rpcOf(init.body) : '-', status: res.status });
	return res;
};

const transport = new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: auth }, fetch: tracingFetch });
const client = new Client({ name: 'wirepath-mcp-test', version: '1.0.0' });

// initialize, then the initialized notification.
const connected = await attempt('initialize', o.url, async () => {
	await client.connect(transport, { timeout: o['timeout-ms'] });
	return true;
});
if (!connected)
	await finish(script);
// From here on the SDK reports trouble in the background (the GET stream) here;
// before, connect's own error says it, once.
client.onerror = (e) => info('client error', String(e?.message ?? e).split('\n')[0]);
const sid = transport.sessionId;
const sv = client.getServerVersion();
check('initialize', typeof sid === 'string' && sid.length > 0 && /^[\x21-\x7e]+$/.test(sid),
	`session ${sid}, server ${sv?.name} ${sv?.version}, protocol ${transport.protocolVersion}`);
if (offer)
	check('revision', transport.protocolVersion === offer, `offered ${offer}, negotiated ${transport.protocolVersion}`);
check('tools capability', !!client.getServerCapabilities()?.tools, JSON.stringify(client.getServerCapabilities()).slice(0, 300));
const note = wire.find((w) => w.rpc === 'notifications/initialized');
check('notification 202', note?.status === 202, `notifications/initialized answered ${note?.status}`);

// tools/list, every page.
const names = await attempt('tools/list', o.url, async () => {
	const out = [];
	let cursor;
	for (let page = 0; page < 100; page++) {
		const r = await client.listTools(cursor ? { cursor } : {}, { timeout: o['timeout-ms'] });
		out.push(...r.tools.map((t) => t.name));
		cursor = r.nextCursor;
		if (!cursor)
			break;
	}
	return out;
});
if (names) {
	const missing = want.filter((n) => !names.includes(n));
	check('tools/list', missing.length === 0 && new Set(names).size === names.length,
		`${names.length} tools${missing.length ? `, missing ${missing.join(', ')}` : ''}; want ${want.join(', ')}`);
}

// tools/call of the echo tool.
const res = await attempt('tools/call', o.url, () => client.callTool({ name: o['echo-tool'], arguments: { message: o.message } },
	undefined, { timeout: o['timeout-ms'] }));
if (res) {
	const texts = (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);
	check('tools/call', !res.isError && texts.some((t) => t.includes(o.message)),
		`${o['echo-tool']} returned ${JSON.stringify(texts).slice(0, 160)}`);
}

// An unknown tool is refused, as a JSON-RPC error or a result with isError.
const bogus = 'wirepath_test_no_such_tool';
const unk = await attempt('unknown tool', o.url, async () => {
	try {
		const r = await client.callTool({ name: bogus, arguments: {} }, undefined, { timeout: o['timeout-ms'] });
		return r.isError ? `result isError: ${JSON.stringify(r.content).slice(0, 100)}` : null;
	} catch (e) {
		if (isConnectError(e))
			throw e;
		return `error ${e.code}: ${String(e.message).split('\n')[0]}`;
	}
});
if (unk !== undefined)
	check('unknown tool', unk !== null, unk ?? `${bogus} succeeded`);

// Session end: DELETE, which the SDK also accepts as 405; we want it done.
const ended = await attempt('session end', o.url, async () => {
	await transport.terminateSession();
	return true;
});
if (ended) {
	const del = wire.filter((w) => w.method === 'DELETE').pop();
	check('session end', del && del.status >= 200 && del.status < 300 && transport.sessionId === undefined,
		`DELETE answered ${del?.status}`);
}
await client.close();

// Raw requests, as any HTTP client would send them.
const rawPost = async (headers, body) => {
	try {
		const r = await fetch(endpoint, {
			method: 'POST',
			headers: {
				'Content-Type': 'application/json',
				Accept: 'application/json, text/event-stream',
				...headers,
			},
			body: JSON.stringify(body),
			signal: AbortSignal.timeout(o['timeout-ms']),
		});
		const text = await r.text();
		return { status: r.status, text: text.slice(0, 160).replace(/\s+/g, ' ') };
	} catch (e) {
		if (isConnectError(e))
			return await unreachable(o.url, e);
		return { status: 0, text: String(e.message) };
	}
};
const version = transport.protocolVersion ?? LATEST_PROTOCOL_VERSION;
const list = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} };

const gone = await rawPost({ ...auth, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': version }, list);
check('ended session is gone', gone.status === 404, `POST with the old Mcp-Session-Id: ${gone.status} ${gone.text}`);

const none = await rawPost({ ...auth, 'MCP-Protocol-Version': version }, list);
check('no session', none.status === 400, `POST tools/list without Mcp-Session-Id: ${none.status} ${none.text}`);

if (o.key) {
	const init = {
		jsonrpc: '2.0', id: 1, method: 'initialize',
		params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'wirepath-mcp-test', version: '1.0.0' } },
	};
	const anon = await rawPost({}, init);
	check('no key', anon.status === 401, `initialize without Authorization: ${anon.status} ${anon.text}`);
}
info('http', wire.map((w) => `${w.method} ${w.rpc} ${w.status}`).join(', '));
await finish(script);
