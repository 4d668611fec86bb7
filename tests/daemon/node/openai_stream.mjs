// SPDX-License-Identifier: MIT
// A streamed chat completion through the official openai client, with
// stream_options.include_usage, checked chunk by chunk and on the wire.
import OpenAI from 'openai';
import { options, intOpt, check, info, attempt, finish, watchdog, recordingFetch, now, ms, clip } from './lib.mjs';

const script = 'openai_stream.mjs';
const usage = '--url BASE --model ID [--key KEY] [--prompt TEXT] [--max-tokens N] [--min-spread-ms MS] [--timeout-ms MS]';
const o = options(script, usage, {
	model: { type: 'string' },
	prompt: { type: 'string' },
	'max-tokens': { type: 'string' },
	'min-spread-ms': { type: 'string' },
}, { prompt: 'Say hello in a few words.', 'max-tokens': '16', 'min-spread-ms': '0', key: 'none' });
if (!o.model) {
	process.stderr.write(`${script}: --model (or WP_MODEL) is required\n`);
	process.exit(2);
}
const maxTokens = intOpt(script, usage, 'max-tokens', o['max-tokens'], 1);
const minSpread = intOpt(script, usage, 'min-spread-ms', o['min-spread-ms'], 0);
watchdog(script, o['timeout-ms'] * 2);

const wire = [];
const client = new OpenAI({
	baseURL: `${o.url}/v1`,
	apiKey: o.key,
	maxRetries: 0,
	timeout: o['timeout-ms'],
	fetch: recordingFetch(wire),
});

const t0 = now();
const stream = await attempt('stream open', o.url, () => client.chat.completions.create({
	model: o.model,
	messages: [{ role: 'user', content: o.prompt }],
	max_tokens: maxTokens,
	stream: true,
	stream_options: { include_usage: true },
}));
if (!stream)
	await finish(script);

const chunks = []; // { t, c }
const iterated = await attempt('stream read', o.url, async () => {
	for await (const c of stream)
		chunks.push({ t: now(), c });
	return true;
});

// Shape of every chunk: what the client's types promise.
const ids = new Set(chunks.map((x) => x.c.id));
check('chunk shape', chunks.length > 0 && chunks.every((x) => x.c.object === 'chat.completion.chunk' &&
	typeof x.c.id === 'string' && x.c.id.length > 0 && Array.isArray(x.c.choices) &&
	typeof x.c.created === 'number' && typeof x.c.model === 'string'),
	`${chunks.length} chunks, object chat.completion.chunk with id, created, model, choices`);
check('one id', ids.size === 1, `${ids.size} distinct id(s) ${[...ids].slice(0, 3).join(' ')}`);

const choiceChunks = chunks.filter((x) => x.c.choices.length > 0);
const content = choiceChunks.filter((x) => typeof x.c.choices[0].delta?.content === 'string' &&
	x.c.choices[0].delta.content.length > 0);
const text = content.map((x) => x.c.choices[0].delta.content).join('');
check('chunks one by one', content.length > 1, `${content.length} content chunks`);
check('content', text.length > 0, clip(text));

// finish_reason: on the last choice chunk, and only there.
const last = choiceChunks[choiceChunks.length - 1];
const finishAt = choiceChunks.findIndex((x) => x.c.choices[0].finish_reason != null);
check('finish_reason', last && last.c.choices[0].finish_reason != null && finishAt === choiceChunks.length - 1,
	last ? `last choice chunk has ${JSON.stringify(last.c.choices[0].finish_reason)}, first set on choice chunk ${finishAt < 0 ? '(none)' : finishAt + 1} of ${choiceChunks.length}` : 'no choice chunk');

// The usage chunk: choices [], after every choice chunk, usage adding up.
const usageAt = chunks.findIndex((x) => x.c.choices.length === 0 && x.c.usage);
const u = usageAt >= 0 ? chunks[usageAt].c.usage : undefined;
check('usage chunk', u && u.total_tokens > 0 && usageAt === chunks.length - 1,
	u ? `choices [], total_tokens ${u.total_tokens} at chunk ${usageAt + 1} of ${chunks.length}` : 'no chunk with choices [] and usage');
if (u)
	check('usage sums', u.prompt_tokens + u.completion_tokens === u.total_tokens && u.completion_tokens > 0,
		`prompt ${u.prompt_tokens} + completion ${u.completion_tokens} = total ${u.total_tokens}`);
check('choice chunks carry no usage', choiceChunks.every((x) => x.c.usage == null),
	'usage is null on choice chunks when include_usage is set');

// The iterator ended; the client ends on "data: [DONE]" and on EOF alike,
// so the wire tells which it was.
const rec = wire[0];
const raw = rec ? Buffer.concat(rec.bytes).toString('utf8') : '';
check('iterator ended', iterated === true && rec?.ended === true, `${rec?.reads.length ?? 0} body reads, ${raw.length} bytes`);
check('[DONE]', /(^|\n)data: \[DONE\]\r?\n\r?\n$/.test(raw), `stream ends with ${JSON.stringify(raw.slice(-16))}`);
const lines = raw.split(/\r?\n/).filter((l) => l.length > 0);
check('sse lines', lines.length > 0 && lines.every((l) => l.startsWith('data: ') || l.startsWith(':')),
	`${lines.length} non-empty lines, each "data: " (no "event:")`);
const ctype = rec?.headers.get('content-type') ?? '';
check('content-type', /^text\/event-stream\b/.test(ctype), ctype);

// Timing: time to first token, pace, spread (0 when a proxy buffers it all).
if (content.length > 0) {
	const ttft = content[0].t - t0;
	const spread = content[content.length - 1].t - content[0].t;
	const toks = u?.completion_tokens ?? content.length;
	info('timing', `ttft ${ms(ttft)}, ${toks} tokens, ${content.length} content chunks over ${ms(spread)}, ` +
		`${rec?.reads.length ?? 0} body reads, total ${ms(chunks[chunks.length - 1].t - t0)}`);
	if (minSpread > 0)
		check('chunks spread', spread >= minSpread, `first to last content chunk ${ms(spread)}, want >= ${minSpread} ms`);
}
info('text', clip(text, 2000));
await finish(script);
