/**
 * The status page's file (page.html, beside this module in src/ and, copied by `npm run build`, in dist/)
 * and the headers it is served with. Read on first use, not at import: a build that lost the file still
 * serves /metrics and the probes, and the page answers 500 saying what is missing.
 *
 * The Content-Security-Policy allows the page's own inline script by its hash and nothing from the
 * network: should a value from Redis ever reach the DOM as markup, it could neither run a script nor
 * load or send anything. (The page inserts every value as text; test/statusPage.test.ts checks it.)
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface StatusPage {
  body: Buffer;
  headers: Record<string, string>;
}

let page: StatusPage | null = null;

export function statusPage(): StatusPage {
  if (page !== null) return page;
  const html = readFileSync(new URL('./page.html', import.meta.url), 'utf8');
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
    (m) =>
      `'sha256-${createHash('sha256')
        .update(m[1] as string)
        .digest('base64')}'`,
  );
  page = {
    body: Buffer.from(html),
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': [
        "default-src 'none'",
        `script-src ${scripts.join(' ')}`,
        "style-src 'unsafe-inline'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    },
  };
  return page;
}
