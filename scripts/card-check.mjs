// Headless-Chromium tests of the MCP Apps pay card and the refund confirmation page (issue 15),
// against the real payment-mcp binary on its sandbox.
//
// The host side is the MCP Apps SDK's own AppBridge (@modelcontextprotocol/ext-apps/app-bridge),
// fed by an MCP client (@modelcontextprotocol/client) connected to the binary over stdio, as a real
// host's is: it reads the tool's `_meta.ui.resourceUri`, reads the `ui://` resource, renders it in a
// sandboxed iframe on its own origin under the restrictive CSP the spec prescribes for a resource
// that declares no domains, and forwards the card's `tools/call` to the server. The bridge runs in
// Node; its transport carries the JSON-RPC messages to and from the iframe through the host page's
// window.postMessage (so the card speaks to `window.parent` exactly as it does in a real host).
//
// Tests:
//   1. the pay card: renders amount, subject, order number, sandbox banner, pay link; the QR image
//      in the page decodes (jsQR) to the pay URL; sandbox_simulate_payment -> the card, polling
//      query_payment_order through the bridge, switches to paid and stops polling; dark theme from
//      the host; no CSP violation. Screenshot: target/card-check/pay-card.png (and docs/pay-card.png
//      with CARD_CHECK_UPDATE_DOCS=1).
//   2. the card's refund buttons: a refund for an MCP Apps client without elicitation waits for the
//      card; Confirm (through the app-only tool) sends it.
//   3. URL elicitation: the confirmation page confirms a refund; a declined page and an expired
//      link refund nothing.
//
// Environment: PAYMENT_MCP_BIN (default target/debug/payment-mcp), CARD_CHECK_CHROMIUM (default
// /usr/bin/chromium). Run through scripts/browser-check.sh, which installs what it needs.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import {
  AppBridge,
  RESOURCE_MIME_TYPE,
  getToolUiResourceUri,
  isToolVisibilityAppOnly,
} from '@modelcontextprotocol/ext-apps/app-bridge';
import { chromium } from 'playwright-core';
import jsQR from 'jsqr';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.resolve(ROOT, process.env.PAYMENT_MCP_BIN || 'target/debug/payment-mcp');
const CHROMIUM = process.env.CARD_CHECK_CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'target', 'card-check');
const UI = 'io.modelcontextprotocol/ui';
const STEP = 20_000;

// The CSP a host applies to a resource that declares no domains (SEP-1865, "Host Behavior").
const CARD_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self' data:; connect-src 'none'; frame-src 'none'; object-src 'none'; base-uri 'self'";

let browser;
const servers = [];
const clients = [];

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(servers.map((s) => new Promise((r) => s.close(r))));
  if (browser) await browser.close();
});

async function launch() {
  if (!browser) {
    await mkdir(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }
  return browser;
}

/** payment-mcp on its sandbox, with an MCP client declaring `capabilities`. */
async function connect(capabilities, env = {}, onElicit) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PAYMENT_') && !k.startsWith('AP_')));
  const transport = new StdioClientTransport({
    command: BIN,
    env: { ...base, PAYMENT_LOG: 'warn', ...env },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'payment-mcp-card-check', version: '1.0.0' }, { capabilities });
  if (onElicit) client.setRequestHandler('elicitation/create', onElicit);
  await client.connect(transport);
  clients.push(client);
  return client;
}

const APPS = { extensions: { [UI]: { mimeTypes: [RESOURCE_MIME_TYPE] } } };

/** Serves the host page on one origin and the card (with the host's CSP) on another. */
async function hostServer(html) {
  const server = http.createServer((req, res) => {
    if (req.url === '/host.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!DOCTYPE html><html><body style="margin:0;padding:16px;background:#d4d4d8">
<iframe id="card" sandbox="allow-scripts allow-same-origin" style="border:0;width:440px;height:560px;display:block;border-radius:12px"></iframe>
<script>
const frame = document.getElementById('card');
window.addEventListener('message', (e) => { if (e.source === frame.contentWindow) window.__fromCard(e.data); });
window.__toCard = (m) => frame.contentWindow.postMessage(m, '*');
window.__load = (url) => { frame.src = url; };
window.__resize = (h) => { frame.style.height = h + 'px'; };
</script></body></html>`);
    } else if (req.url === '/card.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CARD_CSP });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  const port = server.address().port;
  // Different origins for the host and the view, as the spec requires of a sandbox.
  return { host: `http://127.0.0.1:${port}/host.html`, card: `http://localhost:${port}/card.html` };
}

/**
 * Mounts the card the way a host does for a tool call: the AppBridge answers the card's
 * ui/initialize, then gets the tool's input and result. Returns the page, the card's frame, and a
 * log of the tools the card called.
 */
async function mountCard(client, tools, toolName, args, result, hostContext = { theme: 'light' }) {
  const tool = tools.find((t) => t.name === toolName);
  const uri = getToolUiResourceUri(tool);
  assert.equal(uri, 'ui://payment-mcp/pay-card.html', `${toolName} links the card`);
  const read = await client.readResource({ uri });
  const content = read.contents[0];
  assert.equal(content.mimeType, RESOURCE_MIME_TYPE);
  assert.ok(content.text.length < 30 * 1024, 'the card is under 30 KB');
  const urls = await hostServer(content.text);

  const page = await (await launch()).newPage({ viewport: { width: 472, height: 620 } });
  const problems = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  const calls = [];
  const transport = {
    async start() {},
    async send(message) { await page.evaluate((m) => window.__toCard(m), message); },
    async close() {},
  };
  await page.exposeFunction('__fromCard', (message) => transport.onmessage?.(message));
  await page.goto(urls.host);

  const bridge = new AppBridge(client, { name: 'card-check-host', version: '1.0.0' }, { serverTools: {}, openLinks: {} }, {
    hostContext: { ...hostContext, displayMode: 'inline', platform: 'desktop' },
  });
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  bridge.onsizechange = ({ height }) => { if (height) page.evaluate((h) => window.__resize(h), height).catch(() => {}); };
  bridge.onopenlink = async () => ({});
  await bridge.connect(transport);
  // A host forwards only the tools the app may call (visibility includes "app"), and logs them.
  const forward = bridge.oncalltool;
  bridge.oncalltool = async (params, extra) => {
    const called = tools.find((t) => t.name === params.name);
    if (!called) throw new Error(`unknown tool ${params.name}`);
    const visibility = called._meta?.ui?.visibility ?? ['model', 'app'];
    if (!visibility.includes('app')) throw new Error(`${params.name} is not callable by apps`);
    calls.push(params.name);
    return forward(params, extra);
  };
  await page.evaluate((u) => window.__load(u), urls.card);
  await initialized;
  await bridge.sendToolInput({ arguments: args });
  await bridge.sendToolResult(result);
  const frame = page.frames().find((f) => f.url() === urls.card);
  assert.ok(frame, 'the card frame loaded');
  return { page, frame, bridge, calls, problems };
}

async function statusIs(frame, state) {
  await frame.waitForFunction((s) => document.getElementById('status').dataset.state === s, state, { timeout: STEP });
}

/** Decodes the QR image the card shows, from its pixels as the browser rendered them. */
async function decodeCardQr(frame) {
  const image = await frame.evaluate(() => {
    const img = document.getElementById('qr');
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    return { width: data.width, height: data.height, pixels: Array.from(data.data) };
  });
  const code = jsQR(Uint8ClampedArray.from(image.pixels), image.width, image.height);
  assert.ok(code, 'the QR in the card decodes');
  return code.data;
}

test('the pay card shows the order, its QR decodes to the pay URL, and it switches to paid', async () => {
  const client = await connect(APPS, { PAYMENT_CONFIRM_REFUNDS: 'true' });
  assert.ok(client.getServerCapabilities().extensions?.[UI], 'the server declares MCP Apps to this client');
  const { tools } = await client.listTools();
  const decision = tools.find((t) => t.name === 'payment_card_refund_decision');
  assert.ok(decision && isToolVisibilityAppOnly(decision), 'the refund decision tool is app-only');
  const modelTools = tools.filter((t) => !isToolVisibilityAppOnly(t)).map((t) => t.name);
  assert.ok(!modelTools.includes('payment_card_refund_decision'), 'a host never offers it to the model');

  const args = { merchant_order_no: `CARD-${Date.now()}`, amount: '6.66', subject: 'Green tea ×2' };
  const created = await client.callTool({ name: 'create_payment_order', arguments: args });
  const sc = created.structuredContent;
  assert.equal(sc.state, 'pending');

  const { page, frame, calls, bridge, problems } = await mountCard(client, tools, 'create_payment_order', args, created);
  await statusIs(frame, 'pending');
  const shown = await frame.evaluate(() => ({
    amount: document.getElementById('amount').textContent,
    subject: document.getElementById('subject').textContent,
    merchant: document.getElementById('merchant').textContent,
    banner: !document.getElementById('banner').hidden,
    link: document.getElementById('link').value,
  }));
  assert.deepEqual(shown, {
    amount: '¥6.66',
    subject: 'Green tea ×2',
    merchant: `Order ${args.merchant_order_no}`,
    banner: true,
    link: sc.pay_url,
  });
  assert.equal(await decodeCardQr(frame), sc.pay_url, 'the QR image decodes to the pay URL');
  await page.screenshot({ path: path.join(OUT, 'pay-card.png'), clip: await cardClip(page) });

  // The payer pays; the card finds out by itself, through the host.
  const paid = await client.callTool({ name: 'sandbox_simulate_payment', arguments: { order_no: sc.order_no, outcome: 'paid' } });
  assert.equal(paid.structuredContent.state, 'paid');
  await statusIs(frame, 'paid');
  assert.match(await frame.evaluate(() => document.getElementById('status-text').textContent), /^Paid ¥6\.66/);
  assert.ok(calls.length >= 1 && calls.every((n) => n === 'query_payment_order'), `the card polled: ${calls}`);
  assert.equal(await frame.evaluate(() => document.getElementById('qrbox').hidden), true, 'no QR once paid');
  const polls = calls.length;
  await page.waitForTimeout(7_000);
  assert.equal(calls.length, polls, 'the card stops polling once the state is final');
  await page.screenshot({ path: path.join(OUT, 'pay-card-paid.png'), clip: await cardClip(page) });

  // The host's theme wins over the OS preference.
  bridge.setHostContext({ theme: 'dark', displayMode: 'inline', platform: 'desktop' });
  await frame.waitForFunction(() => document.documentElement.dataset.theme === 'dark', null, { timeout: STEP });
  const bg = await frame.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(24, 24, 27)', 'dark background');
  await page.screenshot({ path: path.join(OUT, 'pay-card-dark.png'), clip: await cardClip(page) });

  assert.deepEqual(problems, [], 'no CSP violation or script error');
  if (process.env.CARD_CHECK_UPDATE_DOCS === '1') await copyFile(path.join(OUT, 'pay-card.png'), path.join(ROOT, 'docs', 'pay-card.png'));
  await page.close();
});

async function cardClip(page) {
  const box = await page.locator('#card').boundingBox();
  return { x: box.x - 8, y: box.y - 8, width: box.width + 16, height: Math.min(box.height, 600) + 16 };
}

async function paidOrder(client, tag) {
  const created = await client.callTool({ name: 'create_payment_order', arguments: { merchant_order_no: `${tag}-${Date.now()}`, amount: '5.00' } });
  const orderNo = created.structuredContent.order_no;
  await client.callTool({ name: 'sandbox_simulate_payment', arguments: { order_no: orderNo, outcome: 'paid' } });
  return orderNo;
}

async function refundsOf(client, orderNo) {
  const r = await client.callTool({ name: 'query_refund_status', arguments: { order_no: orderNo } });
  if (r.isError) {
    assert.equal(r.structuredContent.error.kind, 'not_found', JSON.stringify(r.structuredContent));
    return [];
  }
  return r.structuredContent.refunds;
}

test("the card's Confirm button sends a refund through the app-only tool", async () => {
  const client = await connect(APPS, { PAYMENT_CONFIRM_REFUNDS: 'true' });
  const { tools } = await client.listTools();
  const orderNo = await paidOrder(client, 'CARD-BTN');
  const args = { order_no: orderNo, refund_amount: '2.00', reason: 'one cup broken', mch_refund_no: `RF-BTN-${Date.now()}` };
  const asked = await client.callTool({ name: 'refund_payment_order', arguments: args });
  assert.equal(asked.isError, true);
  assert.equal(asked.structuredContent.error.code, 'awaiting_confirmation');
  assert.deepEqual(await refundsOf(client, orderNo), [], 'nothing is sent before the button');

  const { frame, page, calls, problems } = await mountCard(client, tools, 'refund_payment_order', args, asked);
  await frame.waitForSelector('#confirm:not([hidden])', { timeout: STEP });
  const shown = await frame.evaluate(() => ['c-order', 'c-amount', 'c-reason'].map((id) => document.getElementById(id).textContent));
  assert.deepEqual(shown, [orderNo, '¥2.00', 'one cup broken']);
  await page.screenshot({ path: path.join(OUT, 'card-refund-confirm.png'), clip: await cardClip(page) });
  await frame.click('#btn-confirm');
  await statusIs(frame, 'pending');
  await frame.waitForFunction(() => /Refund sent/.test(document.getElementById('status-text').textContent), null, { timeout: STEP });
  assert.deepEqual(calls, ['payment_card_refund_decision']);
  const refunds = await refundsOf(client, orderNo);
  assert.equal(refunds.length, 1);
  assert.equal(refunds[0].refund_amount, '2.00');
  assert.deepEqual(problems, []);
  await page.close();
});

/** An elicitation handler that opens the confirmation page in Chromium and does `action` there. */
function pageHandler(action, seen) {
  return async (request) => {
    const { mode, url, message } = request.params;
    assert.equal(mode, 'url', 'a URL-mode elicitation');
    seen.push({ url, message });
    const page = await (await launch()).newPage();
    try {
      if (action.delayMs) await page.waitForTimeout(action.delayMs);
      const response = await page.goto(url);
      if (action.expect === 'gone') {
        assert.equal(response.status(), 410, 'an expired link shows no confirmation');
        const forged = await page.request.post(url, { form: { decision: 'confirm' }, headers: { origin: new URL(url).origin } });
        assert.equal(forged.status(), 410, 'and confirms nothing');
        return { action: 'accept' };
      }
      assert.equal(response.status(), 200);
      for (const [id, want] of Object.entries(action.shows)) {
        assert.equal((await page.textContent(`#${id}`)).trim(), want, id);
      }
      if (action.screenshot) await page.screenshot({ path: path.join(OUT, action.screenshot) });
      await page.click(action.click === 'confirm' ? '#confirm' : '#decline');
      await page.waitForSelector('#done');
      const again = await page.request.post(url, { form: { decision: 'confirm' }, headers: { origin: new URL(url).origin } });
      assert.equal(again.status(), 410, 'the link works once');
      return { action: 'accept' };
    } finally {
      await page.close();
    }
  };
}

test('the URL-elicitation page confirms a refund; a declined page or an expired link refunds nothing', async () => {
  const seen = [];
  let action;
  const client = await connect({ elicitation: { url: {} } }, { PAYMENT_CONFIRM_REFUNDS: 'true' }, (req) => pageHandler(action, seen)(req));

  const orderNo = await paidOrder(client, 'CARD-URL');
  const mchRefundNo = `RF-URL-${Date.now()}`;
  action = { click: 'confirm', shows: { order: orderNo, amount: '¥1.50', reason: 'late <delivery>', 'refund-no': mchRefundNo }, screenshot: 'confirm-page.png' };
  const ok = await client.callTool({ name: 'refund_payment_order', arguments: { order_no: orderNo, refund_amount: '1.50', reason: 'late <delivery>', mch_refund_no: mchRefundNo } });
  assert.notEqual(ok.isError, true, JSON.stringify(ok.structuredContent));
  assert.equal(ok.structuredContent.state, 'processing');
  assert.match(seen[0].url, /^http:\/\/127\.0\.0\.1:\d+\/confirm\/[0-9a-f]{64}$/);
  assert.equal((await refundsOf(client, orderNo)).length, 1);

  const declinedOrder = await paidOrder(client, 'CARD-URL-NO');
  action = { click: 'decline', shows: { order: declinedOrder, amount: '¥1.00' } };
  const no = await client.callTool({ name: 'refund_payment_order', arguments: { order_no: declinedOrder, refund_amount: '1.00', mch_refund_no: `RF-NO-${Date.now()}` } });
  assert.equal(no.isError, true);
  assert.equal(no.structuredContent.error.kind, 'refused');
  assert.deepEqual(await refundsOf(client, declinedOrder), [], 'a declined page refunds nothing');

  // A link nobody used in time: the server gives up, and the page no longer confirms.
  const seenLate = [];
  const late = await connect({ elicitation: { url: {} } }, { PAYMENT_CONFIRM_REFUNDS: 'true', PAYMENT_CONFIRM_TIMEOUT_SECONDS: '2' }, pageHandler({ delayMs: 2_500, expect: 'gone' }, seenLate));
  const lateOrder = await paidOrder(late, 'CARD-URL-LATE');
  const expired = await late.callTool({ name: 'refund_payment_order', arguments: { order_no: lateOrder, refund_amount: '1.00', mch_refund_no: `RF-LATE-${Date.now()}` } });
  assert.equal(expired.isError, true);
  assert.match(expired.structuredContent.error.message, /expired/);
  assert.equal(seenLate.length, 1);
  assert.deepEqual(await refundsOf(late, lateOrder), [], 'an expired link refunds nothing');
});
