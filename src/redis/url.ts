/**
 * Redis URLs in messages and in the config: checked once with the WHATWG URL parser (the one the
 * connections use), and shown only with their secrets masked.
 */

/**
 * The URL with every secret masked, for messages: the password (also when it holds an unencoded `@`, up to
 * the last `@` before the host; `redis://:pw@h`), a user-only userinfo (some clients read it as the
 * password), and any `password=` query parameter. Works on malformed URLs too: it never parses.
 */
export function redactUrl(url: string): string {
  let out = url;
  const start = out.indexOf('//');
  if (start >= 0) {
    // The userinfo ends at the LAST `@`: an unencoded `@` (or `/`, `#`) in a password must not end it early.
    const at = out.lastIndexOf('@');
    if (at > start) {
      const userinfo = out.slice(start + 2, at);
      const colon = userinfo.indexOf(':');
      const masked = colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`;
      out = `${out.slice(0, start + 2)}${masked}${out.slice(at)}`;
    }
  }
  return out.replace(/([?&;]pass(?:word)?=)[^&#]*/gi, '$1***');
}

/** The password written in `url` (decoded and as written), to mask it in error texts; [] when none. */
function secretsOf(url: string): string[] {
  const start = url.indexOf('//');
  const at = url.lastIndexOf('@');
  const out: string[] = [];
  if (start >= 0 && at > start) {
    const userinfo = url.slice(start + 2, at);
    const colon = userinfo.indexOf(':');
    out.push(colon < 0 ? userinfo : userinfo.slice(colon + 1));
  }
  for (const m of url.matchAll(/[?&;]pass(?:word)?=([^&#]*)/gi)) out.push(m[1] ?? '');
  const all = out.filter((s) => s.length > 0);
  for (const s of [...all]) {
    try {
      all.push(decodeURIComponent(s));
    } catch {
      // not percent-encoded: the text as written is masked
    }
  }
  return all.filter((s) => s.length > 0);
}

/** `text` (an error message) with the URL's password replaced by `***` wherever it occurs. */
export function maskSecrets(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  for (const s of secretsOf(url)) out = out.split(s).join('***');
  return out;
}

/**
 * Why `url` cannot be used as a Redis URL, or null. The message never contains the URL: it may hold a
 * password.
 */
export function redisUrlProblem(url: string): string | null {
  if (!/^rediss?:\/\//i.test(url)) return 'expected a URL starting with redis:// or rediss://';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return (
      'not a valid URL (expected redis://[user:password@]host[:port][/db]); percent-encode special ' +
      'characters in the user name and password, e.g. %40 for @, %2F for /, %23 for #'
    );
  }
  if (u.hostname === '') return 'the URL names no host (expected redis://[user:password@]host[:port][/db])';
  if (!/^(\/\d*)?$/.test(u.pathname)) {
    return 'the path must be a database number such as /0; percent-encode / and # in a password (%2F, %23)';
  }
  return null;
}
