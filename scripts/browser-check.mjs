// End-to-end browser check of the sandbox pay page, driven through the real MCP stdio interface.
//
//   MCP create_payment_order → open pay_url in headless Chromium → check amount, order numbers, QR,
//   buttons → click "Pay" → page shows "paid" → MCP query_payment_order says paid / 6.66.
//
// Run it through scripts/browser-check.sh, which installs Chromium and the npm packages and builds
// the binary. Environment:
//   PAYMENT_MCP_BIN          the payment-mcp binary (default: target/debug/payment-mcp)
//   BROWSER_CHECK_CHROMIUM   the Chromium executable (default: /usr/bin/chromium)
//   BROWSER_CHECK_TIMEOUT_MS overall time limit (default: 60000)
// Screenshots go to target/browser-check/. Exit code 0 = every check passed.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.resolve(ROOT, process.env.PAYMENT_MCP_BIN || 'target/debug/payment-mcp');
const CHROMIUM = process.env.BROWSER_CHECK_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.BROWSER_CHECK_TIMEOUT_MS || 60_000);
const OUT_DIR = path.join(ROOT, 'target', 'browser-check');
const AMOUNT = '6.66';
const STEP_TIMEOUT_MS = 15_000;

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(2)}s`;
const log = (msg) => console.log(`[${elapsed().padStart(6)}] ${msg}`);

class CheckFailed extends Error {}
function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

let client;
let transport;
let browser;
let serverStderr = '';
let step = 'starting';
let failing = false;

async function cleanup() {
  // Each step is bounded: a hung browser or server must not keep the check alive.
  const bounded = (p) => Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, 5_000).unref())]);
  if (browser) await bounded(browser.close());
  if (client) await bounded(client.close());
  else if (transport) await bounded(transport.close());
}

function dumpServerStderr() {
  const text = serverStderr.trim();
  if (text) {
    console.error('--- payment-mcp stderr (last 4000 chars) ---');
    console.error(text.slice(-4000));
    console.error('--- end of payment-mcp stderr ---');
  }
}

async function fail(message) {
  // Only the first failure counts: after the watchdog fires, cleanup makes pending steps throw too.
  if (failing) return;
  failing = true;
  console.error(`\nBROWSER CHECK FAILED after ${elapsed()} (step: ${step}): ${message}`);
  dumpServerStderr();
  await cleanup();
  process.exit(1);
}

const watchdog = setTimeout(() => {
  fail(`overall time limit of ${TIMEOUT_MS} ms exceeded`).finally(() => process.exit(1));
}, TIMEOUT_MS);

/** Calls an MCP tool and returns its structuredContent, failing on tool errors. */
async function callTool(name, args) {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: STEP_TIMEOUT_MS });
  const sc = result.structuredContent;
  if (result.isError) {
    const text = (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
    throw new CheckFailed(`${name} returned isError: ${JSON.stringify(sc?.error ?? text)}`);
  }
  check(sc && typeof sc === 'object', `${name} returned no structuredContent`);
  return sc;
}

async function main() {
  await mkdir(OUT_DIR, { recursive: true });

  // 1. Start payment-mcp on the sandbox: no PAYMENT_* variables at all.
  step = 'starting payment-mcp over stdio';
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => !k.startsWith('PAYMENT_') && v !== undefined),
  );
  transport = new StdioClientTransport({ command: BIN, args: [], env, cwd: ROOT, stderr: 'pipe' });
  transport.stderr?.on('data', (chunk) => {
    serverStderr += chunk.toString();
  });
  client = new Client({ name: 'payment-mcp-browser-check', version: '0.0.0' }, { capabilities: {} });
  try {
    await client.connect(transport, { timeout: STEP_TIMEOUT_MS });
  } catch (e) {
    throw new CheckFailed(`could not start ${BIN} or finish the MCP handshake: ${e?.message ?? e}`);
  }
  const server = client.getServerVersion();
  log(`MCP connected to ${server?.name ?? '?'} ${server?.version ?? '?'} (${path.relative(ROOT, BIN) || BIN})`);

  const { tools } = await client.listTools(undefined, { timeout: STEP_TIMEOUT_MS });
  const names = tools.map((t) => t.name);
  for (const needed of ['create_payment_order', 'query_payment_order']) {
    check(names.includes(needed), `server does not list the tool ${needed} (it lists: ${names.join(', ')})`);
  }

  // 2. Create the order.
  step = 'create_payment_order';
  const merchantOrderNo = `BROWSER-${Date.now()}`;
  const created = await callTool('create_payment_order', { merchant_order_no: merchantOrderNo, amount: AMOUNT });
  check(created.sandbox === true, `create: expected sandbox === true, got ${JSON.stringify(created.sandbox)}`);
  check(created.state === 'pending', `create: expected state "pending", got ${JSON.stringify(created.state)}`);
  check(created.amount === AMOUNT, `create: expected amount "${AMOUNT}", got ${JSON.stringify(created.amount)}`);
  check(typeof created.order_no === 'string' && created.order_no, 'create: no order_no');
  check(typeof created.pay_url === 'string' && /^https?:\/\//.test(created.pay_url), `create: bad pay_url ${JSON.stringify(created.pay_url)}`);
  const orderNo = created.order_no;
  const payUrl = created.pay_url;
  log(`create_payment_order ok: ${merchantOrderNo} → order_no ${orderNo}, state ${created.state}, pay_url ${payUrl}`);

  // 3. Open the pay page.
  step = 'launching Chromium and opening a tab';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  log(`Chromium ${browser.version()} launched (${CHROMIUM})`);
  // A phone-sized viewport: this is a cashier page meant to be opened on a phone.
  const context = await browser.newContext({ viewport: { width: 420, height: 860 }, deviceScaleFactor: 2 });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location()?.url ?? '';
    // The page declares no icon, so Chromium asks for /favicon.ico, which the sandbox answers with
    // 404. Chromium does not report that request as a network event, only as this console error.
    if (where && new URL(where).pathname === '/favicon.ico') {
      log(`note: ${where} is 404 (the page has no favicon; harmless)`);
      return;
    }
    pageErrors.push(`console error: ${m.text()}${where ? ` (${where})` : ''}`);
  });
  page.on('requestfailed', (r) => pageErrors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    if (r.status() >= 400) pageErrors.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });

  step = 'opening and checking the pay page';
  const response = await page.goto(payUrl, { waitUntil: 'load' });
  check(response && response.status() === 200, `pay page: HTTP ${response?.status()} for ${payUrl}`);

  const text = async (selector) => ((await page.locator(selector).textContent()) ?? '').trim();
  const title = await page.title();
  const banner = await text('.banner');
  const amountText = await text('#amount');
  const mchShown = await text('#mch_orderid');
  const idShown = await text('#orderid');
  const stateShown = await text('#state');
  const payLabel = await text('#pay');
  check(/SANDBOX/.test(banner), `pay page: no SANDBOX banner (banner text: ${JSON.stringify(banner)})`);
  check(amountText.includes(AMOUNT), `pay page: amount shows ${JSON.stringify(amountText)}, expected ${AMOUNT}`);
  check(mchShown === merchantOrderNo, `pay page: merchant order shows ${JSON.stringify(mchShown)}, expected ${merchantOrderNo}`);
  check(idShown === orderNo, `pay page: platform order shows ${JSON.stringify(idShown)}, expected ${orderNo}`);
  check(stateShown === 'pending', `pay page: state shows ${JSON.stringify(stateShown)}, expected pending`);
  check(payLabel.includes(AMOUNT), `pay page: pay button says ${JSON.stringify(payLabel)}`);
  check(await page.locator('#pay').isEnabled(), 'pay page: #pay is disabled on a pending order');
  check(await page.locator('#fail').isEnabled(), 'pay page: #fail is disabled on a pending order');
  const qr = await page.locator('img#qr').evaluate((img) => ({
    complete: img.complete,
    naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight,
    shownWidth: img.getBoundingClientRect().width,
    shownHeight: img.getBoundingClientRect().height,
  }));
  check(qr.complete && qr.naturalWidth > 0, `pay page: QR image did not load (${JSON.stringify(qr)})`);
  check(qr.shownWidth > 100 && qr.shownHeight > 100, `pay page: QR image is drawn too small (${JSON.stringify(qr)})`);
  check(await page.locator('img#qr').isVisible(), 'pay page: QR image is not visible');
  const shot1 = path.join(OUT_DIR, 'pay-page.png');
  await page.screenshot({ path: shot1, fullPage: true });
  log(
    `pay page ok: title ${JSON.stringify(title)}, amount ${JSON.stringify(amountText)}, state ${stateShown}, ` +
      `QR ${qr.naturalWidth}x${qr.naturalHeight} px shown at ${qr.shownWidth}x${qr.shownHeight}; screenshot ${path.relative(ROOT, shot1)}`,
  );

  step = 'clicking #pay and waiting for "paid"';
  // 4. Pay: the form POSTs, the server answers 303 back to the page.
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/pay/${orderNo}/simulate`) && r.request().method() === 'POST'),
    page.click('#pay'),
  ]);
  await page.waitForLoadState('load');
  await page.waitForFunction(() => document.querySelector('#state')?.textContent.trim() === 'paid', null, {
    timeout: STEP_TIMEOUT_MS,
  });
  check(new URL(page.url()).pathname === `/pay/${orderNo}`, `after paying: page is at ${page.url()}, expected /pay/${orderNo}`);
  check(await page.locator('#pay').isDisabled(), 'after paying: #pay is still enabled');
  check(await page.locator('#fail').isDisabled(), 'after paying: #fail is still enabled');
  check((await text('#amount')).includes(AMOUNT), 'after paying: amount no longer shown');
  const shot2 = path.join(OUT_DIR, 'paid.png');
  await page.screenshot({ path: shot2, fullPage: true });
  log(`clicked #pay: page shows state ${await text('#state')}, buttons disabled; screenshot ${path.relative(ROOT, shot2)}`);
  check(pageErrors.length === 0, `browser reported problems:\n  ${pageErrors.join('\n  ')}`);

  // 5. The MCP server sees the payment.
  step = 'query_payment_order';
  const queried = await callTool('query_payment_order', { order_no: orderNo });
  check(queried.state === 'paid', `query: expected state "paid", got ${JSON.stringify(queried.state)}`);
  check(queried.paid_amount === AMOUNT, `query: expected paid_amount "${AMOUNT}", got ${JSON.stringify(queried.paid_amount)}`);
  check(queried.sandbox === true, `query: expected sandbox === true, got ${JSON.stringify(queried.sandbox)}`);
  log(`query_payment_order ok: state ${queried.state}, paid_amount ${queried.paid_amount}`);
}

try {
  await main();
} catch (e) {
  await fail(e instanceof CheckFailed ? e.message : (e?.stack ?? String(e)));
  // After the watchdog fired, fail() returned early: the watchdog's own cleanup exits soon.
  await new Promise((r) => setTimeout(r, 15_000));
  process.exit(1);
}
clearTimeout(watchdog);
await cleanup();
log('BROWSER CHECK PASSED');
process.exit(0);
