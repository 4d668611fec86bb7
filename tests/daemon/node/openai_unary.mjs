// SPDX-License-Identifier: MIT
// The non-streaming OpenAI routes through the official openai client: chat
// completion, completion, embeddings, models, and the error classes the
// client derives from a 401 and from an unknown model.
import OpenAI from 'openai';
import { options, check, info, attempt, finish, watchdog, clip } from './lib.mjs';

const script = 'openai_unary.mjs';
const usage = '--url BASE --model ID [--key KEY] [--completion-model ID] [--embedding-model ID] ' +
	'[--expect-model ID] [--unknown-model ID] [--timeout-ms MS]';
const o = options(script, usage, {
	model: { type: 'string' },
	'completion-model': { type: 'string' },
	'embedding-model': { type: 'string' },
	'expect-model': { type: 'string' },
	'unknown-model': { type: 'string' },
}, { key: 'none', 'unknown-model': 'wirepath-test-no-such-model' });
if (!o.model) {
	process.stderr.write(`${script}: --model (or WP_MODEL) is required\n`);
	process.exit(2);
}
const completionModel = o['completion-model'] ?? o.model;
const embeddingModel = o['embedding-model'] ?? o.model;
const expectModel = o['expect-model'] ?? o.model;
watchdog(script, o['timeout-ms'] * 8);

const mk = (key) => new OpenAI({ baseURL: `${o.url}/v1`, apiKey: key, maxRetries: 0, timeout: o['timeout-ms'] });
const client = mk(o.key);
const nonEmpty = (s) => typeof s === 'string' && s.length > 0;
const usageOk = (u) => u && u.total_tokens > 0 && u.prompt_tokens + (u.completion_tokens ?? 0) === u.total_tokens;
const usageStr = (u) => u ? `usage ${u.prompt_tokens}+${u.completion_tokens ?? 0}=${u.total_tokens}` : 'no usage';

// Chat completion, not streamed.
const chat = await attempt('chat', o.url, () => client.chat.completions.create({
	model: o.model,
	messages: [{ role: 'user', content: 'Say hello in a few words.' }],
	max_tokens: 16,
}));
if (chat) {
	const c0 = chat.choices?.[0];
	check('chat id', nonEmpty(chat.id), chat.id);
	check('chat object', chat.object === 'chat.completion', chat.object);
	check('chat content', c0?.message?.role === 'assistant' && nonEmpty(c0?.message?.content),
		`${c0?.message?.role} ${typeof c0?.message?.content === 'string' ? clip(c0.message.content) : c0?.message?.content}`);
	check('chat finish_reason', nonEmpty(c0?.finish_reason), String(c0?.finish_reason));
	check('chat usage', usageOk(chat.usage), usageStr(chat.usage));
}

// Legacy completion.
const cmpl = await attempt('completion', o.url, () => client.completions.create({
	model: completionModel,
	prompt: 'Once upon a time',
	max_tokens: 16,
}));
if (cmpl) {
	const c0 = cmpl.choices?.[0];
	check('completion object', cmpl.object === 'text_completion' && nonEmpty(cmpl.id), `${cmpl.object} ${cmpl.id}`);
	check('completion text', nonEmpty(c0?.text), typeof c0?.text === 'string' ? clip(c0.text) : String(c0?.text));
	check('completion usage', usageOk(cmpl.usage), usageStr(cmpl.usage));
}

// Embeddings, twice: the client asks for base64 unless told otherwise and
// decodes it itself (as little-endian float32), so a server must speak both
// encodings; both answers must carry the same vectors.
const embs = {};
for (const enc of ['float', 'default (base64)']) {
	const req = { model: embeddingModel, input: ['wirepath', 'front door'] };
	if (enc === 'float')
		req.encoding_format = 'float';
	const emb = await attempt(`embeddings ${enc}`, o.url, () => client.embeddings.create(req));
	if (!emb)
		continue;
	const v = emb.data?.[0]?.embedding;
	const dims = Array.isArray(v) ? v.length : 0;
	check(`embeddings ${enc}`, emb.object === 'list' && emb.data.length === 2 &&
		emb.data.every((d, i) => d.object === 'embedding' && d.index === i && Array.isArray(d.embedding) &&
			d.embedding.length === dims && d.embedding.every(Number.isFinite)) && dims > 0,
		`${emb.data?.length} vectors of ${dims} finite numbers`);
	embs[enc] = emb.data;
}
if (embs.float && embs['default (base64)']) {
	const a = embs.float, b = embs['default (base64)'];
	// float32 on the wire for base64; the float answer may carry more digits.
	const same = a.length === b.length && a.every((d, i) => d.embedding.length === b[i].embedding.length &&
		d.embedding.every((x, j) => Math.abs(x - b[i].embedding[j]) <= 1e-6 * Math.max(1, Math.abs(x))));
	check('embeddings base64 = float', same, `dims ${a[0]?.embedding.length} vs ${b[0]?.embedding.length}; ` +
		`first values ${a[0]?.embedding.slice(0, 3).map((x) => x.toPrecision(6)).join(' ')} vs ` +
		`${b[0]?.embedding.slice(0, 3).map((x) => x.toPrecision(6)).join(' ')}` +
		(same ? '' : ' (a base64 request answered with a JSON array decodes to garbage)'));
}

// Models: the expected id is listed.
const ids = await attempt('models', o.url, async () => {
	const out = [];
	for await (const m of client.models.list()) {
		if (m.object !== 'model' || !nonEmpty(m.id))
			throw new Error(`not a model object: ${JSON.stringify(m).slice(0, 120)}`);
		out.push(m.id);
	}
	return out;
});
if (ids)
	check('models', ids.includes(expectModel), `${ids.length} models, want ${expectModel} in ${ids.slice(0, 8).join(', ')}`);

// Errors: the client's classes come from the status; the body must be
// OpenAI's {"error": {"message": ..., "type": ...}}.
const errorBody = (e) => e?.error && nonEmpty(e.error.message) && nonEmpty(e.error.type);
const errStr = (e) => `${e?.constructor?.name} ${e?.status} ${JSON.stringify(e?.error)?.slice(0, 160)}`;

const bad = await attempt('bad key', o.url, async () => {
	try {
		await mk('wirepath-test-bad-key').models.list();
	} catch (e) {
		if (e instanceof OpenAI.APIConnectionError)
			throw e;
		return e;
	}
	return null;
});
if (bad !== undefined)
	check('bad key', bad instanceof OpenAI.AuthenticationError && bad.status === 401 && errorBody(bad),
		bad ? errStr(bad) : 'accepted: want 401 AuthenticationError');

const unknown = await attempt('unknown model', o.url, async () => {
	try {
		await client.chat.completions.create({
			model: o['unknown-model'],
			messages: [{ role: 'user', content: 'hi' }],
			max_tokens: 1,
		});
	} catch (e) {
		if (e instanceof OpenAI.APIConnectionError)
			throw e;
		return e;
	}
	return null;
});
if (unknown !== undefined)
	check('unknown model', (unknown instanceof OpenAI.NotFoundError || unknown instanceof OpenAI.BadRequestError) &&
		errorBody(unknown), unknown ? errStr(unknown) : `model ${o['unknown-model']} accepted: want 404 or 400`);
info('models', ids ? ids.join(' ') : '-');
await finish(script);
