// What PAYMENT_QR_TEXT costs an agent: the text blocks of one create_payment_order result on the
// sandbox, with and without the half-block QR, in bytes and in tokens of two public BPE encodings
// (gpt-tokenizer's o200k_base and cl100k_base; Anthropic publishes no tokenizer, so Claude's count
// is not measured here). Prints a Markdown table for BENCHMARKS.md.
//
//   node scripts/qr-text-tokens.mjs   (after `npm ci --prefix scripts` and `cargo build`)
// PAYMENT_MCP_BIN picks the binary (default target/debug/payment-mcp).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { countTokens as o200k } from 'gpt-tokenizer/esm/encoding/o200k_base';
import { countTokens as cl100k } from 'gpt-tokenizer/esm/encoding/cl100k_base';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.resolve(ROOT, process.env.PAYMENT_MCP_BIN || 'target/debug/payment-mcp');

async function textBlocks(qrText) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PAYMENT_')));
  const env = { ...base, PAYMENT_QR_TEXT: String(qrText) };
  const client = new Client({ name: 'qr-text-tokens', version: '1' });
  await client.connect(new StdioClientTransport({ command: BIN, env, stderr: 'ignore' }));
  try {
    const r = await client.callTool({ name: 'create_payment_order', arguments: { merchant_order_no: `TOK-${Date.now()}`, amount: '12.30' } });
    const texts = r.content.filter((c) => c.type === 'text').map((c) => c.text);
    return { texts, payUrl: r.structuredContent.pay_url };
  } finally {
    await client.close();
  }
}

const off = await textBlocks(false);
const on = await textBlocks(true);
const link = (t) => t.texts[t.texts.length - 1];
const all = (t) => t.texts.join('\n');
const qr = link(on).slice(link(off).length);
const row = (name, text) =>
  `| ${name} | ${Buffer.byteLength(text, 'utf8').toLocaleString('en')} | ${o200k(text).toLocaleString('en')} | ${cl100k(text).toLocaleString('en')} |`;
console.log(`pay_url: ${off.payUrl} (${off.payUrl.length} characters)\n`); // stdout-ok (a CLI report)
console.log('| text | bytes | o200k_base tokens | cl100k_base tokens |'); // stdout-ok
console.log('|---|---|---|---|'); // stdout-ok
console.log(row('pay-link line (default)', link(off))); // stdout-ok
console.log(row('the added half-block QR (`PAYMENT_QR_TEXT=true`)', qr)); // stdout-ok
console.log(row('all text blocks, default', all(off))); // stdout-ok
console.log(row('all text blocks, `PAYMENT_QR_TEXT=true`', all(on))); // stdout-ok
