// SPDX-License-Identifier: MIT
// A client that walks away mid-stream: start a long streamed chat
// completion, read a few chunks, abort with an AbortController. Exits 0 when
// it got its chunks and the abort took; whether the upstream call was
// cancelled is for the caller to check (the daemon's /metrics or the
// backend's counters), optionally while this process still lives (--hold-ms),
// so the cancel is known to come from the abort and not from process exit.
import OpenAI from 'openai';
import { options, intOpt, check, info, attempt, finish, watchdog, now, ms } from './lib.mjs';

const script = 'openai_abort.mjs';
const usage = '--url BASE --model ID [--key KEY] [--max-tokens N] [--chunks N] [--hold-ms MS] [--timeout-ms MS]';
const o = options(script, usage, {
	model: { type: 'string' },
	'max-tokens': { type: 'string' },
	chunks: { type: 'string' },
	'hold-ms': { type: 'string' },
}, { key: 'none', 'max-tokens': '8192', chunks: '3', 'hold-ms': '0' });
if (!o.model) {
	process.stderr.write(`${script}: --model (or WP_MODEL) is required\n`);
	process.exit(2);
}
const maxTokens = intOpt(script, usage, 'max-tokens', o['max-tokens'], 1);
const want = intOpt(script, usage, 'chunks', o.chunks, 1);
const hold = intOpt(script, usage, 'hold-ms', o['hold-ms'], 0);
watchdog(script, o['timeout-ms'] * 2 + hold);

const client = new OpenAI({ baseURL: `${o.url}/v1`, apiKey: o.key, maxRetries: 0, timeout: o['timeout-ms'] });
const ac = new AbortController();
const t0 = now();
const stream = await attempt('stream open', o.url, () => client.chat.completions.create({
	model: o.model,
	messages: [{ role: 'user', content: 'Write a very long story.' }],
	max_tokens: maxTokens,
	stream: true,
}, { signal: ac.signal }));
if (!stream)
	await finish(script);

let got = 0;
let finished = null; // a finish_reason seen before the abort: the stream was too short
let tAbort = 0;
let outcome = 'ended';
await attempt('stream read', o.url, async () => {
	try {
		for await (const c of stream) {
			got++;
			const fr = c.choices?.[0]?.finish_reason;
			if (fr)
				finished = fr;
			if (got === want && !finished) {
				tAbort = now();
				ac.abort();
			}
		}
		// The client turns its own abort into a quiet end of iteration.
		outcome = tAbort ? 'aborted' : 'ended';
	} catch (e) {
		if (!(e instanceof OpenAI.APIUserAbortError) && e?.name !== 'AbortError')
			throw e;
		outcome = 'aborted';
	}
});
check('chunks before abort', got >= want && !finished,
	`${got} chunks read${finished ? `, but the stream finished (${finished}) before ${want}: raise --max-tokens` : ''}`);
check('aborted', outcome === 'aborted' && ac.signal.aborted, `${outcome} after ${tAbort ? ms(tAbort - t0) : '-'}`);
if (hold > 0) {
	info('hold', `keeping the process alive ${hold} ms after the abort`);
	await new Promise((r) => setTimeout(r, hold));
}
await finish(script);
