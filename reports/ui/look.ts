/**
 * Drives the web UI in headless Chromium the way a person would, and saves screenshots to look at:
 *
 *   node --experimental-websocket --import tsx reports/ui/look.ts <base-url> <analyst-token> <finance-token> [out-dir]
 *
 * Needs `chromium` on the PATH (Debian: `apt-get install -y chromium`); the test suite never does. Talks
 * to Chromium over the DevTools protocol with Node's own WebSocket, so no browser-automation package is
 * needed. Start a server with data first, e.g. `npx tsx reports/ui/demo.ts`, which prints the tokens.
 *
 * Steps: sign in through the form as the analyst, move with j/k, write a note with n, approve with a,
 * reject with r; sign in as finance, run a reconciliation from the form, open the payouts and download
 * the CSV. Any console error or uncaught exception in the page fails the run.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [base = 'http://127.0.0.1:8099', analystToken = '', financeToken = '', outDir = '/tmp/ui-shots'] = process.argv.slice(2);
if (!analystToken || !financeToken) {
  process.stderr.write('usage: look.ts <base-url> <analyst-token> <finance-token> [out-dir]\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string };

class Cdp {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((m: Message) => void)[] = [];
  sessionId: string | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => {
      const msg = JSON.parse(String(event.data)) as Message;
      if (msg.id !== undefined && this.waiting.has(msg.id)) {
        const w = this.waiting.get(msg.id)!;
        this.waiting.delete(msg.id);
        if (msg.error) w.reject(new Error(msg.error.message));
        else w.resolve(msg.result ?? {});
      } else {
        for (const l of this.listeners) l(msg);
      }
    });
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve, { once: true });
      ws.addEventListener('error', reject, { once: true });
    });
    return new Cdp(ws);
  }

  send(method: string, params: Record<string, unknown> = {}, browserLevel = false): Promise<Record<string, unknown>> {
    const id = this.next++;
    const payload: Message = { id, method, params };
    if (!browserLevel && this.sessionId) payload.sessionId = this.sessionId;
    this.ws.send(JSON.stringify(payload));
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  on(listener: (m: Message) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    this.ws.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const profile = mkdtempSync(path.join(tmpdir(), 'ui-look-'));
  const downloads = path.join(profile, 'downloads');
  mkdirSync(downloads);
  const browser = spawn(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--hide-scrollbars', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let text = '';
    browser.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (m) resolve(m[1] as string);
    });
    browser.on('exit', () => reject(new Error(`chromium exited: ${text.slice(-500)}`)));
  });

  const cdp = await Cdp.connect(wsUrl);
  const problems: string[] = [];
  cdp.on((m) => {
    if (m.method === 'Runtime.exceptionThrown') problems.push(`exception: ${JSON.stringify((m.params as { exceptionDetails: unknown }).exceptionDetails)}`);
    if (m.method === 'Runtime.consoleAPICalled' && ['error', 'warning'].includes(String(m.params?.type))) problems.push(`console.${m.params?.type}: ${JSON.stringify(m.params?.args)}`);
    if (m.method === 'Log.entryAdded') {
      const entry = m.params?.entry as { level: string; source: string; text: string; url?: string };
      // 4xx answers are logged by the browser as failed resources: the role probes and the error steps expect them.
      if (entry.level === 'error' && entry.source !== 'network') problems.push(`log: ${entry.text} ${entry.url ?? ''}`);
    }
  });
  const { targetId } = (await cdp.send('Target.createTarget', { url: 'about:blank' }, true)) as { targetId: string };
  const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true }, true)) as { sessionId: string };
  cdp.sessionId = sessionId;
  await cdp.send('Page.enable');
  await cdp.send('Runtime.enable');
  await cdp.send('Log.enable');
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: 1440, height: 1000, deviceScaleFactor: 1, mobile: false });
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true }, true);

  const evaluate = async <T>(expression: string): Promise<T> => {
    const r = (await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as { result: { value: T }; exceptionDetails?: unknown };
    if (r.exceptionDetails) throw new Error(`evaluate failed: ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  };
  const waitFor = async (expression: string, what: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await evaluate<boolean>(`Boolean(${expression})`)) return;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const SPECIAL: Record<string, [number, string?]> = { Enter: [13, '\r'], Escape: [27], ArrowLeft: [37], ArrowUp: [38], ArrowRight: [39], ArrowDown: [40] };
  const key = async (k: string) => {
    const code = k.length === 1 ? `Key${k.toUpperCase()}` : k;
    const [vk, text] = SPECIAL[k] ?? [k.toUpperCase().charCodeAt(0), k];
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: k, code, text, windowsVirtualKeyCode: vk });
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: k, code, windowsVirtualKeyCode: vk });
    await sleep(150);
  };
  const type = async (text: string) => {
    await cdp.send('Input.insertText', { text });
  };
  let shot = 10;
  const screenshot = async (name: string, fullPage = false) => {
    const params: Record<string, unknown> = { format: 'png' };
    if (fullPage) params.captureBeyondViewport = true;
    if (fullPage) {
      const height = await evaluate<number>('document.documentElement.scrollHeight');
      params.clip = { x: 0, y: 0, width: 1440, height, scale: 1 };
    }
    const { data } = (await cdp.send('Page.captureScreenshot', params)) as { data: string };
    const file = path.join(outDir, `${shot++}-${name}.png`);
    writeFileSync(file, Buffer.from(data, 'base64'));
    process.stdout.write(`screenshot ${file}\n`);
  };
  const navigate = async (url: string) => {
    await cdp.send('Page.navigate', { url });
    await waitFor(`document.readyState === 'complete'`, 'page load');
  };
  const signInWithForm = async (token: string) => {
    await navigate(`${base}/ui/`);
    await evaluate(`sessionStorage.clear()`);
    await navigate(`${base}/ui/`);
    await waitFor(`!document.getElementById('signin').hidden`, 'sign-in form');
    await evaluate(`document.getElementById('token-input').focus()`);
    await type(token);
    await key('Enter');
    await waitFor(`!document.getElementById('workspace').hidden`, 'workspace after sign-in');
  };
  const text = (selector: string) => evaluate<string>(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? ''`);

  // --- A wrong token is refused with the server's reason.
  await navigate(`${base}/ui/`);
  await waitFor(`!document.getElementById('signin').hidden`, 'sign-in form');
  await evaluate(`document.getElementById('token-input').focus()`);
  await type('not-a-real-token-0123456789');
  await key('Enter');
  await waitFor(`document.getElementById('signin-error').textContent.length > 0`, 'sign-in error');
  process.stdout.write(`wrong token: ${await text('#signin-error')}\n`);
  await screenshot('signin-refused');

  // --- Analyst: the review queue only.
  await signInWithForm(analystToken);
  await waitFor(`document.querySelector('#detail .detail-head')`, 'conversion detail');
  const tabs = await evaluate<string[]>(`[...document.querySelectorAll('[role=tab]')].filter((t) => !t.hidden).map((t) => t.dataset.tab)`);
  process.stdout.write(`analyst tabs: ${tabs.join(', ')}\n`);
  if (tabs.join() !== 'review') problems.push(`analyst should see only the review tab, saw ${tabs.join()}`);
  const first = await text('#detail h3');
  await key('j');
  await waitFor(`document.querySelector('#detail h3')?.textContent !== ${JSON.stringify(first)}`, 'j to move to the next conversion');
  const second = await text('#detail h3');
  await key('k');
  await waitFor(`document.querySelector('#detail h3')?.textContent === ${JSON.stringify(first)}`, 'k to move back');
  await key('j');
  await waitFor(`document.querySelector('#detail h3')?.textContent === ${JSON.stringify(second)}`, 'j again');
  await key('n');
  await waitFor(`document.activeElement?.id === 'review-note'`, 'n to focus the note');
  await type('Bot user agent on a hosting address; same device farm as yesterday.');
  await screenshot('review-note');
  await key('Escape');
  await waitFor(`document.activeElement?.id !== 'review-note'`, 'Escape to leave the note');
  const before = await evaluate<number>(`document.querySelectorAll('#queue-body tr[data-id]').length`);
  await key('a');
  await waitFor(`document.querySelectorAll('#queue-body tr[data-id]').length === ${before - 1}`, 'a to approve and drop it from the queue');
  process.stdout.write(`approved ${second}: toast "${await text('#toast')}"\n`);
  await screenshot('review-after-approve');
  await key('r');
  await waitFor(`document.querySelectorAll('#queue-body tr[data-id]').length === ${before - 2}`, 'r to reject');
  process.stdout.write(`rejected: toast "${await text('#toast')}"\n`);
  await evaluate(`document.getElementById('review-include-reviewed').click()`);
  await waitFor(`document.querySelector('#queue-body tr.is-reviewed')`, 'reviewed rows when included');
  await evaluate(`document.querySelector('#queue-body tr.is-reviewed').click()`);
  await waitFor(`document.querySelector('#detail .notice-info')`, 'review trail of a reviewed conversion');
  await screenshot('review-reviewed-detail', true);

  // --- Finance: reconciliation and payouts, no review tab.
  await signInWithForm(financeToken);
  const financeTabs = await evaluate<string[]>(`[...document.querySelectorAll('[role=tab]')].filter((t) => !t.hidden).map((t) => t.dataset.tab)`);
  process.stdout.write(`finance tabs: ${financeTabs.join(', ')}\n`);
  if (financeTabs.join() !== 'reconciliation,payouts') problems.push(`finance should see reconciliation and payouts, saw ${financeTabs.join()}`);
  await waitFor(`document.getElementById('runs-body').textContent !== 'Loading…'`, 'runs list');
  await evaluate(`document.getElementById('recon-run').click()`);
  await waitFor(`document.querySelector('#run-detail .chart-svg')`, 'a run with its chart');
  process.stdout.write(`ran reconciliation: toast "${await text('#toast')}"\n`);
  await screenshot('reconciliation-run');
  await evaluate(`(() => { const s = document.getElementById('recon-filter'); if (s) { s.selectedIndex = 1; s.dispatchEvent(new Event('change')); } })()`);
  await screenshot('reconciliation-filtered');
  // An API error is shown plainly: a window the wrong way round is refused by the server... or by the form.
  await evaluate(`document.getElementById('recon-from').value = '2030-01-02T00:00'; document.getElementById('recon-to').value = '2030-01-01T00:00'; document.getElementById('recon-run').click()`);
  await waitFor(`document.querySelector('#recon-error .notice-error')`, 'a window error');
  process.stdout.write(`bad window: ${await text('#recon-error')}\n`);
  await evaluate(`document.getElementById('recon-from').value = '2020-01-01T00:00'; document.getElementById('recon-to').value = '2020-03-01T00:00'; document.getElementById('recon-run').click()`);
  await waitFor(`/\\(\\d{3} /.test(document.getElementById('recon-error').textContent)`, 'the server refusing a too-long window');
  process.stdout.write(`server error: ${await text('#recon-error')}\n`);
  await screenshot('reconciliation-api-error');

  await evaluate(`document.getElementById('tab-payouts').click()`);
  await waitFor(`document.querySelector('#payouts-result .chart-svg')`, 'payout report with a chart');
  await screenshot('payouts', true);
  await evaluate(`document.getElementById('payouts-csv').click()`);
  const deadline = Date.now() + 10_000;
  let csv = '';
  while (Date.now() < deadline && !csv) {
    const done = readdirSync(downloads).filter((f) => f.endsWith('.csv'));
    if (done[0]) csv = readFileSync(path.join(downloads, done[0]), 'utf8');
    else await sleep(200);
  }
  if (!csv) problems.push('the CSV download did not arrive');
  else process.stdout.write(`CSV (${readdirSync(downloads).join(', ')}):\n${csv.split('\n').slice(0, 3).join('\n')}\n`);

  // Keyboard only: the tabs move with the arrow keys.
  await evaluate(`document.getElementById('tab-payouts').focus()`);
  await key('ArrowLeft');
  await waitFor(`document.getElementById('tab-reconciliation').getAttribute('aria-selected') === 'true'`, 'ArrowLeft between tabs');

  cdp.close();
  browser.kill('SIGTERM');
  await sleep(300);
  rmSync(profile, { recursive: true, force: true });
  if (problems.length) {
    process.stderr.write(`\nproblems:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write('\nall steps passed\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
